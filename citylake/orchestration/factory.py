"""DAG factories: registrations in, DAGs out. The files under ``dags/`` only call these.

Department DAG ``citylake_<dept>`` — one task group per registered resource::

    <res>.detect | <res>.extract → <res>.ingest → <res>.conform → <res>.check → <res>.curate → <res>.receipt
                                                                                       \\→ watcher

* ``detect`` (file drops) lists new landing files; ``extract`` (SQL sources) pulls rows past
  the watermark into a landing file (citylake/extract.py).
* ``ingest``, ``check``, ``receipt`` call citylake/pipeline.py; ``conform`` and ``curate`` are
  spark-submits of jobs/conform.py and jobs/curate.py through the Spark provider (connection
  ``spark_default``), one submit per resource and run, covering every pending batch.
* Every stage works on what is ready and is *skipped* when it has nothing to do. Stages after
  detect run when their upstream is done, whatever its state: each takes only batches whose
  previous stage completed, so a batch that failed never moves on, while other batches do.
* ``curate`` declares the resource's asset (``citylake://curated/<res>``); the publication DAG is
  scheduled on those assets.
* ``receipt`` always runs and writes the liaison's receipts; when a stage failed, the failure
  (stage, batch, reason) goes into the receipts of the batches it stopped.
* ``watcher`` fails the DAG run if any task failed (receipts go out either way).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetAny, BaseHook, TaskGroup, TriggerRule, get_current_context, task
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from ..registry import Registration, registrations_by_department
from ..settings import Settings
from . import FRESHNESS_DAG_ID, OWNER, PUBLICATION_DAG_ID, department_dag_id
from .operators import FAILURE_XCOM_KEY, StageSparkSubmitOperator
from .schedules import FRESHNESS_SCHEDULE, TIMEZONE, department_schedule, most_frequent_cycle
from .stages import StageError, StageFailure

START_DATE = pendulum.datetime(2024, 1, 1, tz=TIMEZONE)
REPO_URL = os.environ.get("CITYLAKE_REPO_URL", "")  # optional: link doc_md paths to a repository browser


def default_args() -> dict:
    """Owner and retries with exponential back-off (tunable for the embedded demo)."""
    return {
        "owner": OWNER,
        "retries": int(os.environ.get("CITYLAKE_AIRFLOW_RETRIES", "2")),
        "retry_delay": timedelta(seconds=float(os.environ.get("CITYLAKE_AIRFLOW_RETRY_DELAY_SECONDS", "60"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    }


def _code(path: str) -> str:
    return f"[`{path}`]({REPO_URL.rstrip('/')}/{path})" if REPO_URL else f"`{path}`"


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
def _resource_group(reg: Registration, watcher_upstream: list) -> TaskGroup:
    dept, res = reg.department, reg.resource
    is_sql = reg.source.kind == "sql"

    with TaskGroup(group_id=res, tooltip=f"{reg.name}（{reg.update_cycle}）") as group:
        if is_sql:
            @task(task_id="extract", doc_md=f"Rows of `{reg.source.table or 'query'}` past the watermark "
                  f"`{reg.source.watermark}` (connection `{reg.source.conn_id}`) → one landing CSV. "
                  f"Code: {_code('citylake/extract.py')}.")
            def first(department: str = dept, resource: str = res):
                from .stages import load_reg, run_extract

                settings = Settings.from_env()
                reg_now = load_reg(settings, department, resource)
                uri = BaseHook.get_connection(reg_now.source.conn_id).get_uri()
                result = _run_stage(run_extract, settings, reg_now, uri)
                if not result["rows"]:
                    raise AirflowSkipException(f"{resource}: no rows past watermark {result['watermark_before']!r}")
                return result
        else:
            @task(task_id="detect", doc_md=f"New files in `landing/{dept}/{res}/` (pattern "
                  f"`{reg.source.pattern}`), and batches waiting at any stage. Skipped when nothing waits. "
                  f"Code: {_code('citylake/orchestration/stages.py')} (`work_summary`).")
            def first(department: str = dept, resource: str = res):
                from .stages import has_work, load_reg, work_summary

                settings = Settings.from_env()
                summary = work_summary(settings, load_reg(settings, department, resource))
                if not has_work(summary):
                    raise AirflowSkipException(f"{resource}: no new landing files and no pending batches")
                return summary

        @task(task_id="ingest", trigger_rule=TriggerRule.ALL_DONE,
              doc_md=f"Checksum, copy to raw with a manifest, refuse what cannot be a batch; a file whose bytes "
              f"were already ingested is reported, not ingested again. Code: "
              f"{_code('citylake/pipeline.py')} (`ingest_resource`).")
        def ingest(department: str = dept, resource: str = res):
            from .stages import load_reg, run_ingest

            settings = Settings.from_env()
            summary = _run_stage(run_ingest, settings, load_reg(settings, department, resource))
            if not any(summary[k] for k in ("ingested", "duplicate", "rejected")):
                raise AirflowSkipException(f"{resource}: no landing files")
            return summary

        conform = StageSparkSubmitOperator(
            task_id="conform", stage="conform", department=dept, resource=res,
            trigger_rule=TriggerRule.ALL_DONE,
            doc_md=f"`spark-submit {_code('jobs/conform.py')} --resource {res}` on every pending batch: "
            f"decode, map headers, cast, normalize, validate; good rows → standardized, the rest → quarantine.",
        )

        @task(task_id="check", trigger_rule=TriggerRule.ALL_DONE,
              doc_md=f"Great Expectations gate on each conformed batch; a batch failing a blocking "
              f"expectation is not promoted (its receipt says so). Code: {_code('citylake/pipeline.py')} "
              f"(`check_batches`), {_code('expectations/runner.py')}.")
        def check(department: str = dept, resource: str = res):
            from .stages import load_reg, pending_for, run_check

            settings = Settings.from_env()
            reg_now = load_reg(settings, department, resource)
            if not pending_for(settings, reg_now, "check"):
                raise AirflowSkipException(f"{resource}: no conformed batch waiting for the quality gate")
            return _run_stage(run_check, settings, reg_now)

        curate = StageSparkSubmitOperator(
            task_id="curate", stage="curate", department=dept, resource=res,
            trigger_rule=TriggerRule.ALL_DONE,
            outlets=[Asset(reg.asset_uri)],
            doc_md=f"`spark-submit {_code('jobs/curate.py')} --resource {res}`: merge every promoted batch into "
            f"curated by key ({', '.join(reg.key)}), mask personal fields, switch `_CURRENT.json`. "
            f"Updates asset `{reg.asset_uri}`.",
        )

        @task(task_id="receipt", trigger_rule=TriggerRule.ALL_DONE, retries=1,
              doc_md=f"The liaison's receipts under `receipts/{dept}/{res}/`, also when a stage failed "
              f"(then the receipt names the stage, batch and reason). Code: {_code('citylake/pipeline.py')} "
              f"(`write_receipts`).")
        def receipt(department: str = dept, resource: str = res):
            from .stages import load_reg, receipt_batches, run_receipts

            context = get_current_context()
            ti = context["ti"]
            prefix = f"{resource}."
            stage_ids = [prefix + s for s in ("extract" if is_sql else "detect", "ingest", "conform", "check", "curate")]
            failures = [StageFailure.from_dict(v) for v in _pull_all(ti, stage_ids, FAILURE_XCOM_KEY)]
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

        start = first()
        chain_ = [start, ingest(), conform, check(), curate, receipt()]
        for up, down in zip(chain_, chain_[1:]):
            up >> down
        watcher_upstream.extend(chain_)
    return group


def _pull_all(ti, task_ids: list[str], key: str) -> list[dict]:
    out = []
    for tid in task_ids:
        value = ti.xcom_pull(task_ids=tid, key=key)
        if isinstance(value, dict):
            out.append(value)
    return out


def department_doc(department: str, regs: list[Registration]) -> str:
    lines = [
        f"# {regs[0].department_name}（`{department}`）",
        "",
        "Gathers this department's data resources into the lake: one task group per registration in "
        f"`catalog/resources/{department}/`. Adding a registration file adds its tasks; no DAG code changes.",
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
        "Per resource: `detect`/`extract` → `ingest` → `conform` → `check` → `curate` → `receipt`; "
        "`watcher` fails the run when any task failed.",
        "",
        "Code run by the tasks:",
        f"* extract — {_code('citylake/extract.py')} `extract()`",
        f"* detect / ingest / check / receipt — {_code('citylake/pipeline.py')} "
        "(`detect_new_files`, `ingest_resource`, `check_batches`, `write_receipts`) via "
        f"{_code('citylake/orchestration/stages.py')}",
        f"* conform — `spark-submit` {_code('jobs/conform.py')} `--resource R` (Spark connection `spark_default`)",
        f"* curate — `spark-submit` {_code('jobs/curate.py')} `--resource R`",
        f"* DAG wiring — {_code('citylake/orchestration/factory.py')}; zones and markers — {_code('docs/zones.md')}",
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
        upstream: list = []
        for reg in regs:
            _resource_group(reg, upstream)

        @task(task_id="watcher", trigger_rule=TriggerRule.ONE_FAILED, retries=0,
              doc_md="Fails the DAG run when any task failed; it runs only then. The failing task's "
              "log names the resource, batch and reason.")
        def watcher():
            raise AirflowException("a stage failed in this run; see the failed task(s) of this run")

        upstream >> watcher()
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
    assets = curated_assets(settings)
    with DAG(
        dag_id=PUBLICATION_DAG_ID,
        description="Publish the government data-resource directory (政务数据资源目录)",
        schedule=AssetAny(*assets),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["citylake", "directory", "publication"],
        doc_md="\n".join([
            "# 政务数据资源目录发布 — directory publication",
            "",
            "Runs whenever any curated resource asset is updated (any of: "
            + ", ".join(f"`{a.uri}`" for a in assets) + "), and on demand.",
            "",
            f"Task `publish` calls {_code('catalog/publish.py')} `publish(settings)`: directory entries with row "
            "counts, freshness, quality and schema into the directory database, and the exports "
            "(xlsx, json, csv, DCAT, site) under `$CITYLAKE_HOME/directory/`.",
        ]),
    ) as dag:
        @task(task_id="publish", doc_md=f"Code: {_code('catalog/publish.py')} `publish()`.")
        def publish():
            from catalog.publish import publish as publish_directory

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


# ---- freshness ----------------------------------------------------------------------------------------
def build_freshness_dag() -> DAG:
    with DAG(
        dag_id=FRESHNESS_DAG_ID,
        description="Daily freshness report: resources not updated within their 更新周期",
        schedule=FRESHNESS_SCHEDULE,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        default_args=default_args(),
        tags=["citylake", "directory", "freshness"],
        doc_md="\n".join([
            "# 数据资源更新及时性 — freshness",
            "",
            "Every morning compares each resource's last successful curated update "
            "(`curated/<res>/_CURRENT.json` `updated_at`) with its 更新周期 and writes the report the centre "
            "reads: `$CITYLAKE_HOME/directory/freshness.txt` (Chinese) and `freshness.json`, and "
            "`directory/freshness.json` in the lake. Overdue resources are also marked in the directory "
            "(the publisher applies the same rule).",
            "",
            f"Code: {_code('citylake/freshness.py')} `write_freshness_report()`; the cycle → allowance table is "
            "`citylake.freshness.max_age()`.",
        ]),
    ) as dag:
        @task(task_id="report", doc_md=f"Code: {_code('citylake/freshness.py')}.")
        def report():
            from ..freshness import write_freshness_report

            rep = write_freshness_report(Settings.from_env())
            return {"counts": rep["counts"], "overdue": rep["overdue"], "no_data": rep["no_data"]}

        report()
    return dag
