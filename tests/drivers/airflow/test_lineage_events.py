"""OpenLineage through Airflow: a department DAG run offline (`airflow dags test`) on a small
generated drop writes an event for every task that reads or writes a zone, to the embedded file
transport, and the events chain the resource's data from its landing drop to its curated table,
and on, through the base-library DAG, to the legal-entity base library."""

from __future__ import annotations

import sys

import pytest

from citylake.core.registry import load_registrations
from citylake.stages import lineage
from citylake.stages.chain import SPARK_STEPS
from citylake_dev.testing import local_settings

pytestmark = pytest.mark.slow

DEPT = "scjg"
ROWS, SEED = 40, 7


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from citylake_dev.airflow_embedded import dag_run, openlineage_events_path, read_lineage_events
    from citylake_dev.generate import generate

    home = tmp_path_factory.mktemp("lineage-e2e")
    settings = local_settings(home)
    regs = [r for r in load_registrations(settings.resources_dir) if r.department == DEPT]
    generate(settings, regs, rows=ROWS, seed=SEED)
    outcome = dag_run(f"citylake_{DEPT}", settings=settings)
    print(f"citylake_{DEPT}: {outcome.state}, log {outcome.log_path}, events {openlineage_events_path(settings)}",
          file=sys.stderr)
    return settings, regs, outcome, read_lineage_events(settings)


def _key(d: dict) -> tuple[str, str]:
    return (d["namespace"], d["name"])


def _complete(events: list[dict]) -> dict[str, dict]:
    """task job name (``<dag>.<group>.<task>``, or ``<dag>.<task>`` for the department's Spark steps) ->
    its COMPLETE event (the DAG run's own job, ``<dag>``, left out)."""
    return {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE" and "." in e["job"]["name"]}


def test_the_run_succeeds_and_writes_events_to_the_file_transport(run):
    _settings, _regs, outcome, events = run
    assert outcome.ok, (outcome.failed_tasks, str(outcome.log_path))
    assert events, "no OpenLineage event in the embedded file transport"
    assert {e["job"]["namespace"] for e in events} == {"citylake"}
    assert {"START", "COMPLETE"} <= {e["eventType"] for e in events}


def test_every_task_that_reads_or_writes_a_zone_reports_what_lineage_declares(run):
    settings, regs, _outcome, events = run
    done = _complete(events)
    for reg in regs:
        for step in ("detect", "ingest", "conform", "check", "curate", "receipt"):
            # the Spark steps are the department's tasks (one application for its resources)
            job = f"citylake_{DEPT}.{step}" if step in SPARK_STEPS else f"citylake_{DEPT}.{reg.resource}.{step}"
            assert job in done, f"no COMPLETE event for {job}; jobs: {sorted(done)}"
            ins, outs = lineage.datasets(step, reg, settings)
            assert [_key(d) for d in done[job]["inputs"]] == [d.key for d in ins], job
            assert [_key(d) for d in done[job]["outputs"]] == [d.key for d in outs], job
    # tables say their catalog name
    curate = done[f"citylake_{DEPT}.curate"]
    [table] = curate["outputs"]
    names = [i["name"] for i in table["facets"]["symlinks"]["identifiers"]]
    assert names == [f"{regs[0].department}.{regs[0].resource}"]


def test_the_events_chain_landing_to_raw_to_standardized_to_curated(run):
    settings, regs, _outcome, events = run
    edges = {(_key(i), _key(o)) for e in events if e["eventType"] == "COMPLETE"
             for i in e.get("inputs", []) for o in e.get("outputs", [])}
    for reg in regs:
        landing, raw, std, curated = (lineage.zone_of(settings, reg, z).key
                                      for z in ("source", "raw", "standardized", "curated"))
        assert (landing, raw) in edges and (raw, std) in edges and (std, curated) in edges, reg.resource


@pytest.fixture(scope="module")
def base_run(run):
    """Then the other source of the legal-entity base library (gjj) and the base-library DAG."""
    from citylake.core.registry import load_base_libraries
    from citylake.drivers.airflow import BASE_DAG_ID
    from citylake_dev.airflow_embedded import dag_run, read_lineage_events
    from citylake_dev.generate import generate

    settings, _regs, _outcome, _events = run
    [lib] = [lib for lib in load_base_libraries(settings.resources_dir) if lib.name == "legal_entity"]
    others = [s.reg for s in lib.sources if s.reg.department != DEPT]
    generate(settings, others, rows=ROWS, seed=SEED)
    outcomes = [dag_run(f"citylake_{d}", settings=settings) for d in sorted({r.department for r in others})]
    outcomes.append(dag_run(BASE_DAG_ID, settings=settings))
    return settings, lib, outcomes, read_lineage_events(settings)


def test_the_base_library_task_reports_its_sources_and_tables(base_run):
    from citylake.drivers.airflow import BASE_DAG_ID

    settings, lib, outcomes, events = base_run
    # one task builds every library; the legal-entity library is what this checks (the population
    # library's sources were not run: it stays empty)
    job = f"{BASE_DAG_ID}.build"
    done = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    assert job in done, ([(o.dag_id, o.state, o.failed_tasks) for o in outcomes], sorted(done))
    [build] = [b for b in lineage.builds(settings, load_registrations(settings.resources_dir)) if b.owner == lib.name]
    ins, outs = lineage.build_datasets(build, settings)
    assert {d.key for d in ins} <= {_key(d) for d in done[job]["inputs"]}
    assert {d.key for d in outs} <= {_key(d) for d in done[job]["outputs"]}
    # landing → raw → standardized → curated → base, for every source of the library
    edges = {(_key(i), _key(o)) for e in events if e["eventType"] == "COMPLETE"
             for i in e.get("inputs", []) for o in e.get("outputs", [])}
    base_table = outs[0].key
    for src in lib.sources:
        landing, raw, std, curated = (lineage.zone_of(settings, src.reg, z).key
                                      for z in ("source", "raw", "standardized", "curated"))
        assert {(landing, raw), (raw, std), (std, curated), (curated, base_table)} <= edges, src.reg.resource
