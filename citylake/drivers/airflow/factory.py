"""DAG factories: registrations in, DAGs out. The files under ``dags/`` only call these.

Department DAG ``citylake_<dept>`` — one task group per registered resource for its Python steps, and
one task per Spark step for the whole department, in the order of the chain
(:mod:`citylake.stages.chain`, the single definition of the order)::

    <res>.detect | <res>.extract → <res>.ingest ─┐
    <res2>.detect | …            → <res2>.ingest ─┴→ conform → check → curate ─┬→ <res>.receipt
                                                                             └→ <res2>.receipt   (→ watcher)

* ``detect`` (file drops) lists new landing files and batches waiting; ``extract`` (SQL sources)
  pulls rows past the watermark into a landing file.
* ``conform``, ``check`` and ``curate`` are spark-submits of ``citylake/drivers/sparkjob.py`` through
  the Spark provider (connection ``spark_default``): **one application per stage of the run**, over
  every resource of the department with pending batches, every pending batch of each. The JVM,
  session and catalog start once per stage, not once per resource and stage; the resources run one
  after another in it, and one failing does not stop the others (its receipt names its own reason).
  The other steps are Python tasks (:mod:`.tasks`).
* Every step works on what is ready and is *skipped* when it has nothing to do. Steps after the
  first run when their upstream is done, whatever its state: each takes only batches whose
  previous step completed, so a batch that failed never moves on, while other batches do.
* ``curate`` declares the department's assets (``citylake://curated/<res>``); the publication DAG is
  scheduled on those assets.
* ``receipt`` always runs and writes the liaison's receipts; when a step failed for its resource,
  the failure (step, batch, reason) goes into the receipts of the batches it stopped.
* ``watcher`` fails the DAG run if any task failed (receipts go out either way).

Base-library DAG ``citylake_base_libraries`` — scheduled on the curated assets of every resource
feeding a base library (:mod:`citylake.stages.base`); one task ``build``, one
``sparkjob.py base --resource <library> …`` application over every library, updating each library's
asset ``citylake://base/<library>`` (the publication DAG is scheduled on those too).

Maintenance DAG ``citylake_maintenance`` — nightly, one task ``maintain``, one ``sparkjob.py maintain``
application over every resource with a table: compact its tables and expire snapshots past the
retention (:mod:`citylake.stages.maintain`).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, BaseHook, TaskGroup, TriggerRule, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from citylake.core.registry import BaseLibrary, Registration, load_base_libraries, registrations_by_department
from citylake.core.settings import Settings
from citylake.drivers.airflow import (
    BASE_DAG_ID,
    FRESHNESS_DAG_ID,
    MAINTENANCE_DAG_ID,
    OWNER,
    PUBLICATION_DAG_ID,
    department_dag_id,
)
from citylake.drivers.airflow.lineage import publication_task_lineage, task_lineage
from citylake.drivers.airflow.operators import FAILURE_XCOM_KEY, StageSparkSubmitOperator
from citylake.drivers.airflow.schedules import FRESHNESS_SCHEDULE, TIMEZONE, department_schedule, most_frequent_cycle
from citylake.drivers.airflow.tasks import MAINTAIN, StageError, StageFailure
from citylake.stages.chain import AFTER_FIRST, ALL_STEPS, BASE_STEP, FIRST_STEP, SPARK_STEPS, code_path, steps

START_DATE = pendulum.datetime(2024, 1, 1, tz=TIMEZONE)
# Beijing time, after the nightly department runs (02:00, weekly/monthly 03:00) and before the
# freshness report (06:30): compaction commits then rarely race a curate merge on the same table.
MAINTENANCE_SCHEDULE = "30 4 * * *"


def default_args(settings: Settings | None = None) -> dict:
    """Owner and retries with exponential back-off (tunable for the embedded demo)."""
    settings = settings or Settings.from_env()
    return {
        "owner": OWNER,
        "retries": settings.airflow_retries,
        "retry_delay": timedelta(seconds=settings.airflow_retry_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    }


def _code(path: str) -> str:
    repo_url = Settings.from_env().repo_url  # optional: link doc_md paths to a repository browser
    return f"[`{path}`]({repo_url.rstrip('/')}/{path})" if repo_url else f"`{path}`"


# ---- failures ---------------------------------------------------------------------------------------
def _fail(context, failure: StageFailure, exc: BaseException):
    """Record the failure for the receipt task and fail the task with a message naming it."""
    context["ti"].xcom_push(key=FAILURE_XCOM_KEY, value=failure.as_dict())
    raise AirflowException(failure.message) from exc


def _run_stage(fn, *args):
    context = get_current_context()
    try:
        return fn(*args)
    except StageError as exc:
        _fail(context, exc.failure, exc)


# ---- department DAGs ----------------------------------------------------------------------------------
def _spark_step_task(step: str, department: str, regs: list[Registration]) -> StageSparkSubmitOperator:
    """The department's task for one Spark step: one application over its resources with work."""
    names = ", ".join(r.resource for r in regs)
    what = {
        "conform": "decode, map headers, cast, normalize, validate; good rows → standardized, the rest → quarantine",
        "check": "the Great Expectations gate (Spark engine); a batch failing a blocking expectation is not "
                 "promoted (its receipt says so), which does not fail the task",
        "curate": "merge every promoted batch into curated by key, mask personal fields, switch the curated "
                  "version. Updates the assets " + ", ".join(f"`{r.asset_uri}`" for r in regs),
    }[step]
    return StageSparkSubmitOperator(
        task_id=step, stage=step, targets=[(department, r.resource) for r in regs],
        trigger_rule=TriggerRule.ALL_DONE,
        outlets=[Asset(r.asset_uri) for r in regs] if step == "curate" else None,
        doc_md=f"`spark-submit {_code('citylake/drivers/sparkjob.py')} {step} --resource R …`, one application "
        f"for every resource here with pending batches ({names}), on all of them: {what}. "
        f"Code: {_code(code_path(step))}.",
    )


def _resource_tasks(reg: Registration, spark_tasks: dict) -> list:
    """The resource's steps in the chain's order: its own Python tasks in its task group, the
    department's Spark tasks where the chain has a Spark step."""
    order = steps(reg)
    builders = {
        "extract": lambda: _extract_task(reg),
        "detect": lambda: _detect_task(reg),
        "ingest": lambda: _ingest_task(reg),
        "receipt": lambda: _receipt_task(reg, order),
    }
    assert set(order) <= set(builders) | SPARK_STEPS, \
        f"the chain has steps without a task: {set(order) - set(builders) - SPARK_STEPS}"
    with TaskGroup(group_id=reg.resource, tooltip=f"{reg.name}（{reg.update_cycle}）"):
        # a @task call gives its XComArg: wire its operator
        return [spark_tasks[step] if step in SPARK_STEPS else builders[step]().operator for step in order]


def _extract_task(reg: Registration):
    @task(task_id="extract", **task_lineage("extract", reg), doc_md=f"Rows of `{reg.source.table or 'query'}` past the watermark "
          f"`{reg.source.watermark}` (connection `{reg.source.conn_id}`) → one raw batch (the watermark moves after it). "
          f"Code: {_code(code_path('extract'))}.")
    def extract(department: str = reg.department, resource: str = reg.resource):
        from citylake.drivers.airflow.tasks import load_reg, run_extract

        settings = Settings.from_env()
        reg_now = load_reg(settings, department, resource)
        uri = BaseHook.get_connection(reg_now.source.conn_id).get_uri()
        result = _run_stage(run_extract, settings, reg_now, uri)
        if not result["rows"]:
            raise AirflowSkipException(f"{resource}: no rows past watermark {result['watermark_before']!r}")
        return result

    return extract()


def _detect_task(reg: Registration):
    @task(task_id="detect", **task_lineage("detect", reg), doc_md=f"New files in `landing/{reg.department}/{reg.resource}/` (pattern "
          f"`{reg.source.pattern}`), and batches waiting at any step. Skipped when nothing waits. "
          f"Code: {_code('citylake/drivers/airflow/tasks.py')} (`work_summary`).")
    def detect(department: str = reg.department, resource: str = reg.resource):
        from citylake.drivers.airflow.tasks import has_work, load_reg, work_summary

        settings = Settings.from_env()
        summary = work_summary(settings, load_reg(settings, department, resource))
        if not has_work(summary):
            raise AirflowSkipException(f"{resource}: no new landing files and no pending batches")
        return summary

    return detect()


def _ingest_task(reg: Registration):
    @task(task_id="ingest", trigger_rule=TriggerRule.ALL_DONE, **task_lineage("ingest", reg),
          doc_md=f"Checksum, copy to raw with a manifest, refuse what cannot be a batch; a file whose bytes "
          f"were already ingested is reported, not ingested again (unless its batch was refused, failed or blocked: then "
          f"it is reprocessed). Code: {_code(code_path('ingest'))}.")
    def ingest(department: str = reg.department, resource: str = reg.resource):
        from citylake.drivers.airflow.tasks import load_reg, run_ingest

        settings = Settings.from_env()
        summary = _run_stage(run_ingest, settings, load_reg(settings, department, resource))
        if not any(summary[k] for k in ("ingested", "reprocessed", "duplicate", "rejected")):
            raise AirflowSkipException(f"{resource}: no landing files")
        return summary

    return ingest()


def _receipt_task(reg: Registration, order: tuple[str, ...]):
    @task(task_id="receipt", trigger_rule=TriggerRule.ALL_DONE, retries=1, **task_lineage("receipt", reg),
          doc_md=f"The liaison's receipts under `receipts/{reg.department}/{reg.resource}/`, also when a step "
          f"failed (then the receipt names the step, batch and reason). Code: {_code(code_path('receipt'))}.")
    def receipt(department: str = reg.department, resource: str = reg.resource):
        from citylake.drivers.airflow.tasks import load_reg, receipt_batches, run_receipts

        context = get_current_context()
        ti = context["ti"]
        prefix = f"{resource}."
        stage_ids = [s if s in SPARK_STEPS else prefix + s for s in order if s != "receipt"]
        failures = [f for f in map(StageFailure.from_dict, _pull_all(ti, stage_ids, FAILURE_XCOM_KEY))
                    if f.resource == resource]
        touched: list[str] = []
        first_result = ti.xcom_pull(task_ids=stage_ids[0]) or {}
        for ids in (first_result.get("pending") or {}).values():
            touched.extend(ids)
        touched.extend((ti.xcom_pull(task_ids=prefix + "ingest") or {}).get("batches", []))
        settings = Settings.from_env()
        reg_now = load_reg(settings, department, resource)
        batch_ids = receipt_batches(settings, reg_now, touched)
        if not batch_ids and not failures:
            raise AirflowSkipException(f"{resource}: no batch needs a receipt")
        return _run_stage(run_receipts, settings, reg_now, batch_ids, failures)

    return receipt()


def _pull_all(ti, task_ids: list[str], key: str) -> list[dict]:
    """Every failure note pushed by ``task_ids`` (a Python task pushes one, a Spark task a list)."""
    out = []
    for tid in task_ids:
        value = ti.xcom_pull(task_ids=tid, key=key)
        out.extend(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict))
    return out


def department_doc(department: str, regs: list[Registration]) -> str:
    lines = [
        f"# {regs[0].department_name}（`{department}`）",
        "",
        "Gathers this department's data resources into the lake: one task group per registration in "
        f"`registrations/{department}/`. Adding a registration file adds its tasks; no DAG code changes.",
        "",
        "| resource | 名称 | 来源 | 更新周期 | asset |",
        "|---|---|---|---|---|",
    ]
    for r in regs:
        src = (f"SQL `{r.source.conn_id}` · `{r.source.table or 'query'}` · watermark `{r.source.watermark}`"
               if r.source.kind == "sql" else f"file drop `{r.source.pattern}` ({r.source.format})")
        lines.append(f"| `{r.resource}` | {r.name} | {src} | {r.update_cycle} | `{r.asset_uri}` |")
    lines += [
        "",
        f"Schedule: the most frequent 更新周期 here ({most_frequent_cycle(r.update_cycle for r in regs)}), "
        f"Beijing time. A task with nothing to do is skipped.",
        "",
        "The steps of the chain: "
        + " → ".join(["/".join(f"`{s}`" for s in FIRST_STEP.values()), *(f"`{s}`" for s in AFTER_FIRST)]) + ". "
        "Per resource, a task group holds its Python steps; each Spark step ("
        + ", ".join(f"`{s}`" for s in AFTER_FIRST if s in SPARK_STEPS) + ") is one task and one Spark application "
        "for all the department's resources with work. `watcher` fails the run when any task failed.",
        "",
        "Code run by the tasks (the chain: `citylake/stages/chain.py`):",
        *[f"* {step} — {_code(code_path(step))}" + (" via `spark-submit citylake/drivers/sparkjob.py`"
                                                     if step in SPARK_STEPS else "")
          for step in ALL_STEPS],
        f"* DAG wiring — {_code('citylake/drivers/airflow/factory.py')}; zones and markers — {_code('docs/zones.md')}",
    ]
    return "\n".join(lines)


def build_department_dag(department: str, regs: list[Registration]) -> DAG:
    regs = sorted(regs, key=lambda r: r.resource)
    cycles = sorted({r.update_cycle for r in regs})
    tags = ["citylake", "department", department, regs[0].department_name, *cycles]
    if any(r.source.kind == "sql" for r in regs):
        tags.append("sql-extract")
    with DAG(
        dag_id=department_dag_id(department),
        description=f"{regs[0].department_name}: {', '.join(r.name for r in regs)}",
        schedule=department_schedule(regs),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=tags,
        doc_md=department_doc(department, regs),
        dagrun_timeout=timedelta(hours=6),
    ) as dag:
        spark_tasks = {step: _spark_step_task(step, department, regs)
                       for step in AFTER_FIRST if step in SPARK_STEPS}
        upstream = {t.task_id: t for t in spark_tasks.values()}
        edges: set = set()
        for reg in regs:
            tasks = _resource_tasks(reg, spark_tasks)
            for up, down in itertools.pairwise(tasks):
                if (up.task_id, down.task_id) not in edges:  # Spark tasks are shared by every resource
                    edges.add((up.task_id, down.task_id))
                    up >> down
            upstream.update((t.task_id, t) for t in tasks)

        @task(task_id="watcher", trigger_rule=TriggerRule.ONE_FAILED, retries=0,
              doc_md="Fails the DAG run when any task failed; it runs only then. The failing task's "
              "log names the resource, batch and reason.")
        def watcher():
            raise AirflowException("a stage failed in this run; see the failed task(s) of this run")

        list(upstream.values()) >> watcher()
    return dag


def build_department_dags(settings: Settings | None = None) -> dict[str, DAG]:
    settings = settings or Settings.from_env()
    by_dept = registrations_by_department(settings.resources_dir)
    return {department_dag_id(d): build_department_dag(d, regs) for d, regs in sorted(by_dept.items())}


# ---- publication ------------------------------------------------------------------------------------
def curated_assets(settings: Settings | None = None) -> list[Asset]:
    settings = settings or Settings.from_env()
    by_dept = registrations_by_department(settings.resources_dir)
    return [Asset(r.asset_uri) for regs in by_dept.values() for r in sorted(regs, key=lambda r: r.resource)]


def build_publication_dag(settings: Settings | None = None) -> DAG:
    settings = settings or Settings.from_env()
    assets = curated_assets(settings) + base_assets(settings)
    regs = [r for rs in registrations_by_department(settings.resources_dir).values() for r in rs]
    with DAG(
        dag_id=PUBLICATION_DAG_ID,
        description="Publish the government data-resource directory (政务数据资源目录)",
        schedule=AssetAny(*assets),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["citylake", "directory", "publication"],
        doc_md="\n".join(
            [
                "# 政务数据资源目录发布 — directory publication",
                "",
                "Runs whenever any curated resource asset is updated (any of: "
                + ", ".join(f"`{a.uri}`" for a in assets)
                + "), and on demand.",
                "",
                f"Task `publish` calls {_code('citylake/stages/publish/publish.py')} `publish(settings)`: directory entries with row "
                "counts, freshness, quality and schema into the directory database, and the exports "
                "(xlsx, json, csv, DCAT, site) under `$CITYLAKE_HOME/directory/`.",
            ]
        ),
    ) as dag:

        @task(task_id="publish", **publication_task_lineage(regs, settings),
              doc_md=f"Code: {_code('citylake/stages/publish/publish.py')} `publish()`.")
        def publish():
            from citylake.stages.publish.publish import publish as publish_directory

            result = publish_directory(Settings.from_env())
            return {
                "version": getattr(result, "version", None),
                "entries": len(getattr(result, "entries", []) or []),
                "changes": len(getattr(result, "changes", []) or []),
                "new_codes": list(getattr(result, "new_codes", []) or []),
                "warnings": list(getattr(result, "warnings", []) or []),
                "outputs": dict(getattr(result, "outputs", {}) or {}),
            }

        publish()
    return dag


# ---- base libraries -----------------------------------------------------------------------------------
def base_asset(lib: BaseLibrary) -> Asset:
    return Asset(f"citylake://base/{lib.name}")


def base_assets(settings: Settings | None = None) -> list[Asset]:
    settings = settings or Settings.from_env()
    return [base_asset(lib) for lib in load_base_libraries(settings.resources_dir)]


class BaseLibrarySubmitOperator(StageSparkSubmitOperator):
    """spark-submit ``sparkjob.py base --resource <library> …``: build the base libraries, in one
    application. No batches: each library decides itself whether a source changed (it is then
    ``unchanged``)."""

    def __init__(self, *, libraries: list[str], settings: Settings | None = None, **kwargs):
        super().__init__(stage=BASE_STEP, targets=[("base", lib) for lib in libraries], settings=settings, **kwargs)

    def work(self, settings: Settings) -> dict[str, list[str]]:
        return {lib: [] for _, lib in self.targets}


def build_base_dag(settings: Settings | None = None) -> DAG:
    settings = settings or Settings.from_env()
    libs = load_base_libraries(settings.resources_dir)
    sources = sorted({s.reg.asset_uri for lib in libs for s in lib.sources})
    with DAG(
        dag_id=BASE_DAG_ID,
        description="The base libraries (基础库), joined across departments from the curated tables",
        schedule=AssetAny(*[Asset(uri) for uri in sources]),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(settings),
        tags=["citylake", "base-library", *(lib.reg.name for lib in libs)],
        doc_md="\n".join([
            "# 基础库 — base libraries",
            "",
            "Runs whenever a curated resource feeding a base library is updated (any of: "
            + ", ".join(f"`{u}`" for u in sources) + "), and on demand. One task, `build`, one Spark "
            "application for all the libraries:",
            "",
            *[f"* `{lib.name}` {lib.reg.name} (`base.{lib.name}`, `base.{lib.name}_conflicts`) from "
              + ", ".join(f"`{s.reg.department}.{s.reg.resource}`" for s in lib.sources) for lib in libs],
            "",
            f"Code: {_code('citylake/stages/base.py')} `build_library()` via "
            f"`spark-submit {_code('citylake/drivers/sparkjob.py')} base --resource <library>`; wiring "
            f"{_code('citylake/drivers/airflow/factory.py')}; the libraries: `registrations/base/`.",
        ]),
    ) as dag:
        BaseLibrarySubmitOperator(
            task_id="build", libraries=[lib.name for lib in libs], settings=settings,
            outlets=[base_asset(lib) for lib in libs],
            doc_md=f"`spark-submit {_code('citylake/drivers/sparkjob.py')} base --resource <library> …`, one "
            "application for every library: "
            + "; ".join(f"{lib.reg.name} from {', '.join(s.reg.resource for s in lib.sources)} (asset "
                        f"`{base_asset(lib).uri}`)" for lib in libs)
            + f". A library failing does not stop the others. Code: {_code('citylake/stages/base.py')}.",
        )
    return dag


# ---- freshness ----------------------------------------------------------------------------------------
def build_freshness_dag() -> DAG:
    settings = Settings.from_env()
    regs = [r for rs in registrations_by_department(settings.resources_dir).values() for r in rs]
    with DAG(
        dag_id=FRESHNESS_DAG_ID,
        description="Daily freshness report: resources not updated within their 更新周期",
        schedule=FRESHNESS_SCHEDULE,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["citylake", "directory", "freshness"],
        doc_md="\n".join(
            [
                "# 数据资源更新及时性 — freshness",
                "",
                "Every morning compares how current each resource's curated data is (the newest receipt "
                "time among the batches it holds, the curated pointer's `received_through`) with its "
                "更新周期 and writes the report the centre "
                "reads: `$CITYLAKE_HOME/directory/freshness.txt` (Chinese) and `freshness.json`, and "
                "`directory/freshness.json` in the lake. Overdue resources are also marked in the directory "
                "(the publisher applies the same rule).",
                "",
                f"Code: {_code('citylake/stages/freshness.py')} `write_freshness_report()`; the cycle → allowance "
                "table is `citylake.stages.freshness.max_age()`.",
            ]
        ),
    ) as dag:

        @task(task_id="report", **publication_task_lineage(regs, settings), doc_md=f"Code: {_code('citylake/stages/freshness.py')}.")
        def report():
            from citylake.stages.freshness import write_freshness_report

            rep = write_freshness_report(Settings.from_env())
            return {"counts": rep["counts"], "overdue": rep["overdue"], "no_data": rep["no_data"]}

        report()
    return dag


# ---- maintenance --------------------------------------------------------------------------------------
def build_maintenance_dag(settings: Settings | None = None) -> DAG:
    settings = settings or Settings.from_env()
    by_dept = registrations_by_department(settings.resources_dir)
    regs = sorted((r for rs in by_dept.values() for r in rs), key=lambda r: r.resource)
    with DAG(
        dag_id=MAINTENANCE_DAG_ID,
        description="Nightly table maintenance: compact small files, expire old snapshots",
        schedule=MAINTENANCE_SCHEDULE,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(settings),
        tags=["citylake", "maintenance", "iceberg"],
        dagrun_timeout=timedelta(hours=4),
        doc_md="\n".join(
            [
                "# 数据表维护 — table maintenance",
                "",
                "Every night, one task, `maintain`, runs "
                f"`spark-submit {_code('citylake/drivers/sparkjob.py')} maintain --resource R …`: one Spark "
                "application over every registered resource with a table, on its two Iceberg tables "
                "(`standardized.<resource>` and `<department>.<resource>`):",
                "",
                "* **compact**: many small merges leave many small data files and delete files; they are "
                "rewritten into few files with the deletes applied, so reads stay fast. Rows do not change.",
                f"* **expire snapshots** older than {settings.snapshot_retention_days} days "
                "(`CITYLAKE_SNAPSHOT_RETENTION_DAYS`) and the files only they use: time travel "
                "(`VERSION AS OF`, `citylake history`) reaches back that far. The last curate merge and "
                "snapshots a pending quality check reads are kept.",
                "* **remove orphan files** (left by failed writes) older than the retention, and at least 3 days.",
                "",
                "A resource with no table yet is left out. A resource that fails fails the run; the "
                "others are still maintained.",
                "",
                f"Code: {_code('citylake/stages/maintain.py')} `maintain_resource()`; wiring "
                f"{_code('citylake/drivers/airflow/factory.py')}.",
            ]
        ),
    ) as dag:
        StageSparkSubmitOperator(
            task_id=MAINTAIN, stage=MAINTAIN, targets=[(r.department, r.resource) for r in regs], settings=settings,
            doc_md=f"`spark-submit {_code('citylake/drivers/sparkjob.py')} maintain --resource R …`, one "
            "application: compact and expire " + ", ".join(f"`{r.department}.{r.resource}`" for r in regs)
            + f" and their standardized tables. Code: {_code('citylake/stages/maintain.py')}.",
        )
    return dag
