"""The embedded Airflow: the demo runs the production DAGs as real DAG runs, on one machine.

* :func:`prepare_airflow_home` — ``$CITYLAKE_HOME/airflow``: SQLite metadata, the repository's
  ``dags/`` folder, no example DAGs; ``airflow db migrate`` once per Airflow version.
* :func:`load_dev_env` — the committed development file ``config/airflow-dev.env``
  (connections ``spark_default`` = ``local[*]`` and ``rsj_source_db`` = a SQLite file under
  ``$CITYLAKE_HOME``), expanded and exported; the real environment always wins.
* :func:`run_dag` / :func:`run_dags` — DAG runs through Airflow's ``airflow dags test`` command,
  in a subprocess with the embedded environment (tasks run one after another, no scheduler or
  executor; several DAGs share one subprocess, so Airflow starts once). Each run's output goes to
  ``$CITYLAKE_HOME/airflow/logs/dag-runs/<dag_id>/<logical date>.log``; the runs are recorded in
  the metadata database. ``run_dag`` returns ``"success"`` or ``"failed"``.
* :func:`run_all` — every department DAG, then the base libraries, then the freshness report, then
  the directory publication (what the curated-asset events trigger in production). Truthy when all
  succeeded.
* OpenLineage: every task's START/COMPLETE/FAIL event, with the datasets it reads and writes
  (:mod:`citylake.stages.lineage`), is appended to :func:`openlineage_events_path`
  (``$CITYLAKE_HOME/openlineage/events.jsonl``, one JSON event a line; :func:`read_lineage_events`).
  With ``OPENLINEAGE_URL`` set (say ``http://127.0.0.1:5000`` for a Marquez), events go there instead.

The demo's department database for the SQL-source registration is seeded by
:mod:`citylake_dev.demo_source`.

Afterwards ``AIRFLOW_HOME=$CITYLAKE_HOME/airflow airflow dags list-runs citylake_gaj`` shows the
runs (the generated ``airflow.cfg`` is aligned with the embedded settings).
Importing this module does not import Airflow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from citylake.core.settings import REPO_ROOT, Settings
from citylake.drivers.cli.progress import ChainProgress
from citylake.stages.chain import StepRun
from citylake_dev.dev_env import DEV_ENV_FILE, dev_env, load_dev_env  # noqa: F401  (re-exported)

DAGS_FOLDER = REPO_ROOT / "dags"



# ---- the Airflow home -----------------------------------------------------------------------------------
def airflow_home(settings: Settings) -> Path:
    return settings.home / "airflow"


def _pyspark_bin() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("pyspark")
    except (ImportError, ValueError):
        return None
    if not spec or not spec.origin:
        return None
    path = Path(spec.origin).parent / "bin"
    return path if (path / "spark-submit").exists() else None


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment for an ``airflow`` subprocess using the embedded home."""
    home = airflow_home(settings)
    # Self-contained: Airflow configuration of the calling environment (another AIRFLOW_HOME, a test
    # mode, …) does not leak in. Connections and variables (AIRFLOW_CONN_*, AIRFLOW_VAR_*) do, and win
    # over the development file.
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("AIRFLOW__") or k in ("AIRFLOW_HOME", "AIRFLOW_CONFIG"))}
    env.update(settings.as_env())
    for key, value in dev_env(settings).items():
        env.setdefault(key, value)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        # Lineage events under one job namespace, in a file unless OPENLINEAGE_URL names a backend.
        "AIRFLOW__OPENLINEAGE__NAMESPACE": env.get("OPENLINEAGE_NAMESPACE", "citylake"),
    })
    if not env.get("OPENLINEAGE_URL"):
        env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = openlineage_transport(settings)
    # spark-submit: the pip-installed pyspark ships it; the job's Python is this interpreter.
    path = [str(Path(sys.executable).parent)]
    pyspark_bin = _pyspark_bin()
    if pyspark_bin:
        path.append(str(pyspark_bin))
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def openlineage_events_path(settings: Settings) -> Path:
    """The OpenLineage file transport's JSON-lines file of the embedded Airflow."""
    return settings.home / "openlineage" / "events.jsonl"


def openlineage_transport(settings: Settings) -> str:
    """``[openlineage] transport``: append every event to :func:`openlineage_events_path`."""
    import json

    path = openlineage_events_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    return json.dumps({"type": "file", "log_file_path": str(path), "append": True})


def read_lineage_events(settings: Settings) -> list[dict]:
    """The OpenLineage events written so far, oldest first."""
    import json

    path = openlineage_events_path(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _airflow_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "airflow", *args]


def airflow_cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run an ``airflow`` command against the embedded home (e.g. ``"dags", "list-runs", "citylake_gaj"``)."""
    return subprocess.run(_airflow_cmd(*args), env=airflow_env(settings), capture_output=True, text=True,
                          check=check)


def list_runs(settings: Settings, dag_id: str) -> list[dict]:
    """``airflow dags list-runs <dag_id> -o json`` against the embedded home."""
    import json

    out = airflow_cli(settings, "dags", "list-runs", dag_id, "-o", "json").stdout
    # Airflow may print a warning line before the JSON document.
    lines = [ln for ln in out.splitlines() if ln.lstrip().startswith("[")]
    return json.loads(lines[-1]) if lines else []


def _airflow_version() -> str:
    from importlib.metadata import version

    return version("apache-airflow-core")


def prepare_airflow_home(settings: Settings) -> Path:
    """Create ``$CITYLAKE_HOME/airflow`` and its SQLite metadata database (migrated once per version)."""
    home = airflow_home(settings)
    (home / "logs").mkdir(parents=True, exist_ok=True)
    stamp = home / ".citylake-migrated"
    wanted = f"{_airflow_version()} {home / 'airflow.db'}"
    if (home / "airflow.db").exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return home
    log_path = home / "logs" / "db-migrate.log"
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(_airflow_cmd("db", "migrate"), env=airflow_env(settings), stdout=log,
                              stderr=subprocess.STDOUT, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed (exit {proc.returncode}); see {log_path}:\n"
                           + _tail(log_path))
    stamp.write_text(wanted + "\n")
    _align_airflow_cfg(home)
    return home


def _align_airflow_cfg(home: Path) -> None:
    """Make the generated airflow.cfg say what the environment says, so that a plain
    ``AIRFLOW_HOME=$CITYLAKE_HOME/airflow airflow dags list-runs …`` sees the same Airflow."""
    cfg = home / "airflow.cfg"
    if not cfg.exists():
        return
    wanted = {"dags_folder": str(DAGS_FOLDER), "load_examples": "False",
              "sql_alchemy_conn": f"sqlite:///{home / 'airflow.db'}"}
    text = cfg.read_text(encoding="utf-8")
    for key, value in wanted.items():
        text = re.sub(rf"(?m)^{key} = .*$", lambda m, k=key, v=value: f"{k} = {v}", text, count=1)
    cfg.write_text(text, encoding="utf-8")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---- DAG runs ------------------------------------------------------------------------------------------
@dataclass
class DagRunOutcome:
    dag_id: str
    state: str  # success | failed
    seconds: float
    log_path: Path
    logical_date: str
    failed_tasks: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "success"


@dataclass
class RunAllResult:
    runs: list[DagRunOutcome]
    airflow_home: Path

    @property
    def ok(self) -> bool:
        return bool(self.runs) and all(r.ok for r in self.runs)

    def __bool__(self) -> bool:
        return self.ok

    @property
    def failed(self) -> list[DagRunOutcome]:
        return [r for r in self.runs if not r.ok]


_RESULT = "CITYLAKE-DAG-RESULT "


def run_dags(dag_ids: list[str], settings: Settings | None = None, logical_date: datetime | None = None,
             timeout: float | None = None, echo: bool = False) -> list[DagRunOutcome]:
    """Run DAGs one after another with ``airflow dags test``, in one subprocess.

    The subprocess runs Airflow's own ``dags test`` command for each DAG (the same code as the CLI),
    so Airflow starts — and warms its in-process execution API — once for all of them. Each run's
    output goes to ``$CITYLAKE_HOME/airflow/logs/dag-runs/<dag_id>/<logical date>.log``; the runs are
    recorded in the metadata database like any other (``airflow dags list-runs``).
    """
    import json
    import tempfile

    settings = settings or Settings.from_env()
    home = prepare_airflow_home(settings)
    base = logical_date or datetime.now(UTC)
    if base.tzinfo is None:
        base = base.replace(tzinfo=UTC)
    plan = []
    for i, dag_id in enumerate(dag_ids):
        when = base + timedelta(microseconds=i)  # distinct logical dates, even for the same DAG
        log_path = home / "logs" / "dag-runs" / dag_id / f"{when.strftime('%Y%m%dT%H%M%S.%f')}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        plan.append({"dag_id": dag_id, "logical_date": when.isoformat(), "log": str(log_path)})
    runner_log = home / "logs" / "dag-runs" / "runner.log"
    outcomes: dict[int, DagRunOutcome] = {}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(plan, f)
        plan_path = f.name
    started = time.monotonic()
    # The DAG at work and its time so far on stderr (live on a terminal, a line every 30 s in a log).
    progress = ChainProgress(quiet=not echo, label="DAG")
    if plan:
        progress.started(plan[0]["dag_id"], "run")
    with progress:
        try:
            with open(runner_log, "a", encoding="utf-8") as rlog:
                proc = subprocess.Popen([sys.executable, "-m", "citylake_dev.airflow_embedded", "dags-test", plan_path],
                                        env=airflow_env(settings), stdout=subprocess.PIPE, stderr=rlog, text=True,
                                        cwd=str(settings.home))
                try:
                    for line in proc.stdout:  # type: ignore[union-attr]
                        if not line.startswith(_RESULT):
                            rlog.write(line)
                            continue
                        r = json.loads(line[len(_RESULT):])
                        outcome = DagRunOutcome(r["dag_id"], r["state"], r["seconds"], Path(r["log"]),
                                                r["logical_date"], r.get("failed_tasks", []), r.get("error"))
                        outcomes[r["index"]] = outcome
                        progress.finished(outcome.dag_id, StepRun("run", outcome.seconds, None), announce=False)
                        if echo:
                            _echo(outcome)
                        if r["index"] + 1 < len(plan):
                            progress.started(plan[r["index"] + 1]["dag_id"], "run")
                        if timeout and time.monotonic() - started > timeout:
                            raise subprocess.TimeoutExpired(proc.args, timeout)
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                except BaseException:  # Ctrl-C and the like: do not leave the runner behind
                    proc.kill()
                    proc.wait()
                    raise
                finally:
                    proc.stdout.close()
        finally:
            os.unlink(plan_path)
    out = []
    for i, item in enumerate(plan):
        out.append(outcomes.get(i) or DagRunOutcome(
            item["dag_id"], "failed", 0.0, Path(item["log"]), item["logical_date"], [],
            f"the Airflow runner stopped before this DAG finished; see {runner_log}"))
    return out


def _echo(o: DagRunOutcome) -> None:
    extra = f"  failed tasks: {', '.join(o.failed_tasks)}" if o.failed_tasks else ""
    extra += f"  ({o.error})" if o.error and not o.ok and not o.failed_tasks else ""
    print(f"airflow: {o.dag_id:26} {o.state:8} {o.seconds:5.0f} s  log {o.log_path}{extra}", flush=True)


def dag_run(dag_id: str, logical_date: datetime | None = None, settings: Settings | None = None,
            timeout: float | None = None) -> DagRunOutcome:
    """One DAG run via ``airflow dags test``, with its outcome (state, failed tasks, log path)."""
    return run_dags([dag_id], settings, logical_date, timeout)[0]


def run_dag(dag_id: str, logical_date: datetime | None = None, settings: Settings | None = None) -> str:
    """Run one DAG through ``airflow dags test``; returns ``"success"`` or ``"failed"``."""
    return dag_run(dag_id, logical_date, settings).state


def department_dag_ids(settings: Settings) -> list[str]:
    from citylake.core.registry import registrations_by_department
    from citylake.drivers.airflow import department_dag_id

    return [department_dag_id(d) for d in sorted(registrations_by_department(settings.resources_dir))]


def run_all(settings: Settings | None = None, rows: int | None = None, seed: int | None = None, *,
            freshness: bool = True, echo: bool = True) -> RunAllResult:
    """Every department DAG, then the base libraries, then the freshness report, then the directory
    publication.

    The demo's SQL source is seeded first when its SQLite file does not exist yet (``rows``,
    ``seed``). The result is truthy when every run succeeded; ``.runs`` has each outcome.
    """
    from citylake.drivers.airflow import BASE_DAG_ID, FRESHNESS_DAG_ID, PUBLICATION_DAG_ID

    settings = settings or Settings.from_env()
    settings.ensure_local_dirs()
    t0 = time.monotonic()
    home = prepare_airflow_home(settings)
    if echo:
        print(f"airflow: embedded Airflow home {home} (SQLite metadata) ready in {time.monotonic() - t0:.0f} s",
              flush=True)
    from citylake_dev.demo_source import DEMO_SOURCE_TABLE, demo_source_path, seed_demo_source_db

    src = demo_source_path(settings)
    if src is not None and not src.exists():
        info = seed_demo_source_db(settings, rows=min(rows or 400, 2000), seed=seed or 20240601)
        if echo:
            print(f"airflow: seeded the demo source database {src} "
                  f"({info['inserted']} rows in {DEMO_SOURCE_TABLE})", flush=True)
    dag_ids = [*department_dag_ids(settings), BASE_DAG_ID]  # base libraries after the resources
    if freshness:
        dag_ids.append(FRESHNESS_DAG_ID)
    dag_ids.append(PUBLICATION_DAG_ID)
    if echo:
        print(f"airflow: running {len(dag_ids)} DAGs with `airflow dags test`: {', '.join(dag_ids)}", flush=True)
    result = RunAllResult(run_dags(dag_ids, settings, echo=echo), home)
    if echo:
        where = os.environ.get("OPENLINEAGE_URL") or openlineage_events_path(settings)
        print(f"airflow: OpenLineage events of every task in {where}", flush=True)
    return result


def _runner_main(plan_path: str) -> int:
    """``python -m citylake_dev.airflow_embedded dags-test PLAN``: run ``airflow dags test`` for each DAG."""
    import json
    import traceback

    plan = json.loads(Path(plan_path).read_text(encoding="utf-8"))
    results = os.fdopen(os.dup(1), "w", buffering=1)
    saved_out, saved_err = os.dup(1), os.dup(2)
    os.dup2(2, 1)  # until a DAG's log takes over, stray output goes to the runner log

    from airflow import configuration  # noqa: F401  (first, as airflow/__main__.py does)
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    for index, item in enumerate(plan):
        started = time.monotonic()
        error = None
        fd = os.open(item["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        try:
            args = parser.parse_args(["dags", "test", item["dag_id"], item["logical_date"]])
            args.func(args)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = str(exc.code)
        except BaseException as exc:
            error = f"{exc.__class__.__name__}: {exc}"
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_err, 1)
            os.dup2(saved_err, 2)
            os.close(fd)
        state, failed = _run_state(item["dag_id"], item["logical_date"])
        if error and state == "success":
            state = "failed"
        results.write(_RESULT + json.dumps({
            "index": index, "dag_id": item["dag_id"], "logical_date": item["logical_date"], "log": item["log"],
            "state": state, "failed_tasks": failed, "error": error,
            "seconds": round(time.monotonic() - started, 1),
        }) + "\n")
    os.dup2(saved_out, 1)
    return 0


def _run_state(dag_id: str, logical_date: str) -> tuple[str, list[str]]:
    """The recorded state of a DAG run and its failed tasks, from the metadata database."""
    try:
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        when = datetime.fromisoformat(logical_date)
        with create_session() as session:
            run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date == when))
            if run is None:
                return "failed", []
            tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                             TaskInstance.run_id == run.run_id)).all()
            failed = sorted(ti.task_id for ti in tis if str(ti.state) in ("failed", "TaskInstanceState.FAILED"))
            return ("success" if str(run.state) in ("success", "DagRunState.SUCCESS") else "failed"), failed
    except Exception:
        return "failed", []


# ---- the demo's department database ---------------------------------------------------------------------

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dags-test":
        raise SystemExit(_runner_main(sys.argv[2]))
    print("usage: python -m citylake_dev.airflow_embedded dags-test PLAN.json", file=sys.stderr)
    raise SystemExit(2)
