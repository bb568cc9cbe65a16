"""Progress of a chain run: plain lines off a terminal, a live line on one, the summary table."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

from citylake.drivers.cli.progress import ChainProgress, spark_tasks, step_rows
from citylake.stages.chain import StepRun


class FakeTracker:
    """Spark's status tracker with two running stages (3 of 8 and 1 of 2 tasks done)."""

    def __init__(self):
        self.stages = {7: SimpleNamespace(numCompletedTasks=3, numTasks=8),
                       9: SimpleNamespace(numCompletedTasks=1, numTasks=2)}

    def getActiveStageIds(self):
        return list(self.stages)

    def getStageInfo(self, stage_id):
        return self.stages.get(stage_id)


FAKE_SPARK = SimpleNamespace(sparkContext=SimpleNamespace(statusTracker=FakeTracker))


def test_rows_each_step_reports():
    conform = [SimpleNamespace(received=10), SimpleNamespace(received=5)]
    assert step_rows("conform", conform) == 15
    assert step_rows("curate", SimpleNamespace(status="merged", added_records=40)) == 40
    assert step_rows("curate", SimpleNamespace(status="unchanged", added_records=0)) == 0
    assert step_rows("extract", {"rows": 7}) == 7
    assert step_rows("ingest", []) is None and step_rows("check", [{"success": True}]) is None


def test_spark_tasks_adds_up_the_running_stages():
    assert spark_tasks(FAKE_SPARK) == (4, 10)
    assert spark_tasks(None) is None
    idle = SimpleNamespace(sparkContext=SimpleNamespace(statusTracker=lambda: SimpleNamespace(
        getActiveStageIds=list, getStageInfo=lambda i: None)))
    assert spark_tasks(idle) is None


def test_plain_lines_with_heartbeats_and_the_summary():
    out = io.StringIO()
    with ChainProgress(FAKE_SPARK, stream=out, heartbeat=0.05, interval=0.01) as progress:
        progress.started("air_quality_hourly", "conform")
        time.sleep(0.2)
        progress.finished("air_quality_hourly", StepRun("conform", 2.0, [SimpleNamespace(received=1000)]))
        progress.started("air_quality_hourly", "check")
        progress.finished("air_quality_hourly", StepRun("check", 0.5, [{"success": True}]))
    lines = out.getvalue().splitlines()
    assert lines[0] == "air_quality_hourly · conform …"
    beats = [line for line in lines if line.startswith("… ")]
    assert beats and all("air_quality_hourly · conform · " in b and b.endswith("Spark tasks 4/10") for b in beats)
    assert "air_quality_hourly · conform done in 2.0 s · 1,000 rows · 500 rows/s" in lines
    assert "air_quality_hourly · check done in 0.5 s" in lines

    table = progress.summary().splitlines()
    assert table[0].split() == ["resource", "step", "seconds", "rows", "rows/s"]
    assert table[2].split() == ["air_quality_hourly", "conform", "2.0", "1,000", "500"]
    assert table[3].split() == ["air_quality_hourly", "check", "0.5"]
    assert table[-1].startswith("1 resource(s), 2 step(s): 2.5 s in steps, ")


def test_quiet_records_without_printing():
    out = io.StringIO()
    with ChainProgress(FAKE_SPARK, stream=out, quiet=True, heartbeat=0.0, interval=0.01) as progress:
        progress.started("r", "conform")
        time.sleep(0.05)
        progress.finished("r", StepRun("conform", 1.0, [SimpleNamespace(received=3)]))
    assert out.getvalue() == ""
    assert [(d.step, d.rows) for d in progress.done] == [("conform", 3)]


def test_live_line_on_a_terminal_prints_finished_steps():
    out = io.StringIO()
    with ChainProgress(FAKE_SPARK, stream=out, live=True, interval=0.01) as progress:
        progress.started("r", "curate")
        time.sleep(0.05)
        progress.finished("r", StepRun("curate", 1.0, SimpleNamespace(status="merged", added_records=9)))
    assert "r · curate done in 1.0 s · 9 rows · 9 rows/s" in out.getvalue()
    assert "r · curate …" not in out.getvalue()  # the live line replaces the start line


def test_no_heartbeat_before_a_step_has_run_that_long():
    out = io.StringIO()
    with ChainProgress(FAKE_SPARK, stream=out, heartbeat=0.3, interval=0.01) as progress:
        time.sleep(0.4)  # idle (Spark starting, say) counts for no step
        progress.started("r", "curate")
        time.sleep(0.1)
        progress.finished("r", StepRun("curate", 0.1, SimpleNamespace(status="unchanged", added_records=0)))
    assert not [line for line in out.getvalue().splitlines() if line.startswith("… ")]
