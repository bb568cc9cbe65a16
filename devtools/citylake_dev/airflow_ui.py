"""The Airflow UI on the embedded default: ``make airflow``.

Starts ``airflow api-server``, ``airflow scheduler`` and ``airflow dag-processor`` as subprocesses on
the embedded Airflow home (:mod:`citylake_dev.airflow_embedded`: ``$CITYLAKE_HOME/airflow``, SQLite,
the repository's ``dags/``), so the runs ``make demo`` recorded can be looked at:

* the api-server listens on 127.0.0.1 only (default port 8080), with a login: Airflow's
  SimpleAuthManager and one user, ``admin`` (role admin), whose password Airflow generates once into
  ``$CITYLAKE_HOME/airflow/simple_auth_manager_passwords.json.generated``;
* once ``/api/v2/monitor/health`` says the metadata database answers and the scheduler and
  dag-processor started here are heartbeating, every citylake DAG is unpaused through the REST API
  (they then run on their schedules, as in production; ``--no-schedule`` keeps the scheduler from
  starting scheduled and asset-triggered runs, triggered runs still run);
* the URL, the user and the password are printed, and it runs until Ctrl-C (or SIGTERM), or until
  one of the three stops, which stops the others. Each process's output goes to
  ``$CITYLAKE_HOME/airflow/logs/ui/<process>.log``.

    python -m citylake_dev.airflow_ui [--port 8080] [--no-wait] [--no-schedule]

In code and tests::

    with airflow_ui(settings, port=free_port()) as ui:
        ui.url, ui.username, ui.password, ui.get("/api/v2/dags")

Importing this module does not import Airflow.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from citylake.core.settings import Settings
from citylake_dev.airflow_embedded import (
    _airflow_cmd,
    _tail,
    airflow_env,
    airflow_home,
    department_dag_ids,
    prepare_airflow_home,
)

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
USERNAME = "admin"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"  # Airflow's own default name
HEALTH_PATH = "/api/v2/monitor/health"
# Started in this order; stopped scheduler and dag-processor first, the api-server (which running
# tasks report to) last.
PROCESSES = ("api-server", "scheduler", "dag-processor")


class AirflowUIError(RuntimeError):
    pass


def citylake_dag_ids(settings: Settings) -> list[str]:
    """Every citylake DAG: one per department, the base libraries, the freshness report, the
    maintenance, the publication."""
    from citylake.drivers.airflow import BASE_DAG_ID, FRESHNESS_DAG_ID, MAINTENANCE_DAG_ID, PUBLICATION_DAG_ID

    return [*department_dag_ids(settings), BASE_DAG_ID, FRESHNESS_DAG_ID, MAINTENANCE_DAG_ID, PUBLICATION_DAG_ID]


def passwords_file(settings: Settings) -> Path:
    return airflow_home(settings) / PASSWORDS_FILE


def ui_env(settings: Settings, port: int = DEFAULT_PORT, host: str = HOST, schedule: bool = True) -> dict[str, str]:
    """:func:`~citylake_dev.airflow_embedded.airflow_env` plus the login and the api-server's address.

    ``[core] execution_api_server_url`` points the scheduler's task runners at this api-server (the
    default assumes port 8080); ``[core] parallelism`` (tasks at a time, and the LocalExecutor's
    worker processes) is twice the cores, at least 4. ``schedule=False`` sets
    ``[scheduler] use_job_schedule = False``.
    """
    env = airflow_env(settings)
    env.update({
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(settings)),
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
        # The LocalExecutor forks this many workers up front (Airflow's default, 32, is a server's).
        "AIRFLOW__CORE__PARALLELISM": str(max(4, 2 * (os.cpu_count() or 2))),
    })
    if not schedule:
        env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    return env


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no clash
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path


class AirflowUI:
    """The three Airflow processes behind the UI, started and stopped together."""

    def __init__(self, settings: Settings | None = None, port: int = DEFAULT_PORT, host: str = HOST,
                 schedule: bool = True):
        self.settings = settings or Settings.from_env()
        self.port = port
        self.host = host
        self.schedule = schedule
        self.url = f"http://{host}:{port}"
        self.username = USERNAME
        self.home = airflow_home(self.settings)
        self.log_dir = self.home / "logs" / "ui"
        self.children: list[Child] = []
        self.started_at: datetime | None = None
        self._token: str | None = None

    # ---- processes ----------------------------------------------------------------------------------
    def commands(self) -> dict[str, list[str]]:
        return {
            "api-server": _airflow_cmd("api-server", "--host", self.host, "--port", str(self.port), "--workers", "1"),
            # No log server (it would listen on every interface): the api-server reads the task logs
            # from the same folder.
            "scheduler": _airflow_cmd("scheduler", "--skip-serve-logs"),
            "dag-processor": _airflow_cmd("dag-processor"),
        }

    def start(self) -> AirflowUI:
        if self.children:
            raise AirflowUIError("already started")
        if _port_in_use(self.host, self.port):
            raise AirflowUIError(f"{self.host}:{self.port} is in use; choose another port with --port")
        self.settings.ensure_local_dirs()
        prepare_airflow_home(self.settings)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = ui_env(self.settings, self.port, self.host, self.schedule)
        self.started_at = datetime.now(UTC)
        try:
            for name, argv in self.commands().items():
                log_path = self.log_dir / f"{name}.log"
                with open(log_path, "w", encoding="utf-8") as log:
                    # A session of its own: Ctrl-C reaches this process only, which stops the children
                    # in order; and the group lets stop() find whatever a child leaves behind.
                    proc = subprocess.Popen(argv, env=env, cwd=str(self.settings.home), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                self.children.append(Child(name, proc, log_path))
        except BaseException:
            self.stop()
            raise
        return self

    def check(self) -> None:
        """Raise :class:`AirflowUIError` (with the end of its log) when a child has exited."""
        for c in self.children:
            code = c.proc.poll()
            if code is not None:
                raise AirflowUIError(f"airflow {c.name} exited with code {code}; the end of {c.log_path}:\n"
                                     + _tail(c.log_path))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every child and everything it started (task runners, spark-submit); idempotent.

        SIGTERM to the scheduler and dag-processor, then to the api-server, each given ``timeout``
        seconds to shut down; then SIGTERM, and SIGKILL after 5 s, to any process that is left of
        their process trees and process groups (task runners have groups of their own).
        """
        if not self.children:
            return
        import psutil  # Airflow's own dependency

        leftovers: dict[int, psutil.Process] = {}

        def collect() -> None:
            for c in self.children:
                try:
                    p = psutil.Process(c.proc.pid)
                    if c.proc.poll() is None:
                        for q in p.children(recursive=True):
                            leftovers.setdefault(q.pid, q)
                except psutil.Error:
                    pass

        collect()
        order = [[c for c in self.children if c.name != "api-server"],
                 [c for c in self.children if c.name == "api-server"]]
        for batch in order:
            for c in batch:
                if c.proc.poll() is None:
                    c.proc.terminate()
            deadline = time.monotonic() + timeout
            for c in batch:
                try:
                    c.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    collect()
                    c.proc.kill()
                    c.proc.wait()
        for p in psutil.process_iter():  # a child's group: processes whose parent died before collect()
            try:
                if os.getpgid(p.pid) in {c.proc.pid for c in self.children} and p.pid != os.getpid():
                    leftovers.setdefault(p.pid, p)
            except (OSError, psutil.Error):
                pass
        alive = [p for p in leftovers.values() if _running(p)]
        for p in alive:
            try:
                p.terminate()
            except psutil.Error:
                pass
        _gone, alive = psutil.wait_procs(alive, timeout=5)
        for p in alive:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(alive, timeout=5)
        self.children = []
        self._token = None

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self.children]

    def __enter__(self) -> AirflowUI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- HTTP ---------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, token: str | None = None,
                timeout: float = 30.0) -> tuple[int, dict | str]:
        """One request to the api-server: (status, the JSON document or the text)."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode("utf-8", errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def health(self) -> dict | None:
        """``/api/v2/monitor/health``, or None while the api-server does not answer."""
        try:
            status, doc = self.request("GET", HEALTH_PATH, timeout=10)
        except (OSError, urllib.error.URLError):
            return None
        return doc if status == 200 and isinstance(doc, dict) else None

    def is_healthy(self, health: dict | None) -> bool:
        """The metadata database answers, and the scheduler and dag-processor heartbeat — the ones
        started here (a heartbeat since :meth:`start`), not a previous run's."""
        if not health or (health.get("metadatabase") or {}).get("status") != "healthy":
            return False
        for part, key in (("scheduler", "latest_scheduler_heartbeat"),
                          ("dag_processor", "latest_dag_processor_heartbeat")):
            info = health.get(part) or {}
            if info.get("status") != "healthy" or not info.get(key):
                return False
            beat = datetime.fromisoformat(info[key])
            if beat.tzinfo is None:
                beat = beat.replace(tzinfo=UTC)
            if self.started_at and beat < self.started_at:
                return False
        return True

    def wait_healthy(self, timeout: float = 300.0, interval: float = 1.0) -> dict:
        deadline = time.monotonic() + timeout
        health = None
        while time.monotonic() < deadline:
            self.check()
            health = self.health()
            if self.is_healthy(health):
                return health
            time.sleep(interval)
        raise AirflowUIError(f"Airflow was not healthy after {timeout:.0f} s; the last {HEALTH_PATH}: "
                             f"{json.dumps(health)}; logs in {self.log_dir}")

    @property
    def password_file(self) -> Path:
        return passwords_file(self.settings)

    @property
    def password(self) -> str | None:
        """The admin's password, once the api-server has generated it (it keeps it from then on)."""
        try:
            return json.loads(self.password_file.read_text(encoding="utf-8") or "{}").get(self.username)
        except (OSError, ValueError):
            return None

    def token(self) -> str:
        """A JWT for the REST API, from ``POST /auth/token`` with the admin's user and password."""
        if self._token is None:
            password = self.password
            if password is None:
                raise AirflowUIError(f"no password for {self.username} in {self.password_file} yet")
            status, doc = self.request("POST", "/auth/token", {"username": self.username, "password": password})
            if status not in (200, 201) or not isinstance(doc, dict) or "access_token" not in doc:
                raise AirflowUIError(f"POST /auth/token answered {status}: {doc}")
            self._token = doc["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        """A REST API call as the admin; raises unless it succeeded."""
        status, doc = self.request(method, path, body, token=self.token())
        if status >= 300:
            raise AirflowUIError(f"{method} {path} answered {status}: {doc}")
        return doc if isinstance(doc, dict) else {"text": doc}

    def dags(self) -> dict[str, dict]:
        """The citylake DAGs the api-server knows, by id."""
        doc = self.api("GET", "/api/v2/dags?dag_id_prefix_pattern=citylake_&limit=100")
        return {d["dag_id"]: d for d in doc.get("dags", [])}

    def unpause(self, dag_ids: list[str] | None = None, timeout: float = 300.0) -> list[str]:
        """Unpause these DAGs (default: every citylake DAG) once the dag-processor has parsed them
        (or a previous run has recorded them); returns the ids that were paused."""
        wanted = dag_ids if dag_ids is not None else citylake_dag_ids(self.settings)
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            known = self.dags()
            missing = [d for d in wanted if d not in known]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise AirflowUIError(f"the dag-processor did not record {', '.join(missing)} within {timeout:.0f} s; "
                                     f"see {self.log_dir / 'dag-processor.log'}")
            time.sleep(2)
        paused = [d for d in wanted if known[d].get("is_paused")]
        for dag_id in paused:
            self.api("PATCH", f"/api/v2/dags/{dag_id}?update_mask=is_paused", {"is_paused": False})
        return paused

    def run_count(self) -> int:
        """How many DAG runs the metadata database holds (``make demo`` records one per DAG)."""
        return int(self.api("GET", "/api/v2/dags/~/dagRuns?limit=1").get("total_entries", 0))

    def ready(self, timeout: float = 300.0) -> list[str]:
        """Wait until healthy, then unpause the citylake DAGs; returns the ids that were paused."""
        self.wait_healthy(timeout)
        return self.unpause(timeout=timeout)

    def supervise(self, interval: float = 1.0) -> None:
        """Block until a child exits (raises :class:`AirflowUIError`)."""
        while True:
            self.check()
            time.sleep(interval)


def _running(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextmanager
def airflow_ui(settings: Settings | None = None, port: int = DEFAULT_PORT, *, host: str = HOST, wait: bool = True,
               schedule: bool = True, timeout: float = 300.0) -> Iterator[AirflowUI]:
    """Start the api-server, scheduler and dag-processor; with ``wait`` (the default) wait until
    they are healthy and the citylake DAGs are unpaused; yield the :class:`AirflowUI` (``url``,
    ``username``, ``password``, ``token()``); stop all of them on the way out."""
    ui = AirflowUI(settings, port=port, host=host, schedule=schedule)
    ui.start()
    try:
        if wait:
            ui.ready(timeout)
        yield ui
    finally:
        ui.stop()


# ---- the command ----------------------------------------------------------------------------------------
def _say(text: str) -> None:
    print(f"airflow: {text}", flush=True)


def _announce(ui: AirflowUI, unpaused: list[str], seconds: float) -> None:
    _say(f"ready in {seconds:.0f} s: {ui.url}")
    password = ui.password
    _say(f"  log in as {ui.username}, password {password or '(not generated yet)'} "
         f"(kept in {ui.password_file})")
    ids = citylake_dag_ids(ui.settings)
    _say(f"  {len(ids)} citylake DAGs unpaused" + (f" ({len(unpaused)} were paused)" if unpaused else "")
         + ("" if ui.schedule else "; scheduled runs are off (--no-schedule)"))
    try:
        runs = ui.run_count()
    except AirflowUIError:
        runs = None
    if runs == 0:
        _say("  no DAG runs recorded yet: `make demo` runs every DAG once")
    elif runs is not None:
        _say(f"  {runs} DAG runs recorded (the Dags page, tab Dag Runs)")
    _say("Ctrl-C stops it")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m citylake_dev.airflow_ui",
        description="The Airflow UI on the embedded default: api-server, scheduler and dag-processor on "
                    "$CITYLAKE_HOME/airflow, the api-server on 127.0.0.1 with a login; runs until Ctrl-C.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="the api-server's port (default 8080)")
    parser.add_argument("--no-wait", action="store_true",
                        help="print the URL right after starting instead of when healthy; the DAGs are "
                             "unpaused as soon as the api-server answers")
    parser.add_argument("--no-schedule", action="store_true",
                        help="the scheduler starts no scheduled or asset-triggered runs (triggered runs still run)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the processes to become healthy (default 300)")
    args = parser.parse_args(argv)

    def _terminate(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Ctrl-C even when started from a shell that ignores SIGINT for background jobs; SIGTERM and
    # SIGHUP (the terminal closed) stop it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    ui = AirflowUI(Settings.from_env(), port=args.port, schedule=not args.no_schedule)
    started = time.monotonic()
    _say(f"starting {', '.join(PROCESSES)} on {ui.home} (logs in {ui.log_dir}/)")
    try:
        ui.start()
        if args.no_wait:
            _say(f"started: {ui.url} — user {ui.username}, password in {ui.password_file} once the "
                 "api-server is up; Ctrl-C stops it")
            deadline = time.monotonic() + args.timeout
            while True:  # unpause once healthy, without holding the prompt back
                ui.check()
                if ui.is_healthy(ui.health()):
                    _announce(ui, ui.unpause(timeout=args.timeout), time.monotonic() - started)
                    break
                if time.monotonic() > deadline:
                    raise AirflowUIError(f"Airflow was not healthy after {args.timeout:.0f} s; logs in {ui.log_dir}")
                time.sleep(1)
        else:
            _announce(ui, ui.ready(args.timeout), time.monotonic() - started)
        ui.supervise()
    except KeyboardInterrupt:
        _say("stopping …")
        return 0
    except AirflowUIError as exc:
        print(f"airflow: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C does not cut the stop short
            signal.signal(sig, signal.SIG_IGN)
        ui.stop()
        _say("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
