"""OpenLineage through Airflow: a department DAG run offline (`airflow dags test`) on a small
generated drop writes an event for every task that reads or writes a zone, to the embedded file
transport, and the events chain the resource's data from its landing drop to its curated table."""

from __future__ import annotations

import sys

import pytest

from citylake.core.registry import load_registrations
from citylake.core.settings import REPO_ROOT, Settings
from citylake.stages import lineage

pytestmark = pytest.mark.slow

DEPT = "scjg"
ROWS, SEED = 40, 7


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from citylake_dev.airflow_embedded import dag_run, openlineage_events_path, read_lineage_events
    from citylake_dev.generate import generate

    home = tmp_path_factory.mktemp("lineage-e2e")
    settings = Settings.from_env(home=home, lake_uri=(home / "lake").as_uri(),
                                 directory_url=f"sqlite:///{home / 'directory' / 'directory.db'}",
                                 spark_master="local[2]", resources_dir=REPO_ROOT / "registrations")
    settings.ensure_local_dirs()
    regs = [r for r in load_registrations(settings.resources_dir) if r.department == DEPT]
    generate(settings, regs, rows=ROWS, seed=SEED)
    outcome = dag_run(f"citylake_{DEPT}", settings=settings)
    print(f"citylake_{DEPT}: {outcome.state}, log {outcome.log_path}, events {openlineage_events_path(settings)}",
          file=sys.stderr)
    return settings, regs, outcome, read_lineage_events(settings)


def _key(d: dict) -> tuple[str, str]:
    return (d["namespace"], d["name"])


def _complete(events: list[dict]) -> dict[str, dict]:
    """task job name (``<dag>.<group>.<task>``) -> its COMPLETE event."""
    return {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].count(".") >= 2}


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
            job = f"citylake_{DEPT}.{reg.resource}.{step}"
            assert job in done, f"no COMPLETE event for {job}; jobs: {sorted(done)}"
            ins, outs = lineage.datasets(step, reg, settings)
            assert [_key(d) for d in done[job]["inputs"]] == [d.key for d in ins], job
            assert [_key(d) for d in done[job]["outputs"]] == [d.key for d in outs], job
    # tables say their catalog name
    curate = done[f"citylake_{DEPT}.{regs[0].resource}.curate"]
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
