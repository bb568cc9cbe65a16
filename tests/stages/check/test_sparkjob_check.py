"""The check as a Spark job: ``sparkjob.py check`` runs the gate on the batches and prints one line
per batch (a blocked batch is an outcome, not a failed job)."""

from __future__ import annotations

import pytest

from citylake.drivers import sparkjob
from citylake.stages.check.runner import read_result

pytestmark = pytest.mark.spark


def test_sparkjob_check_runs_the_gate_and_says_what_it_found(spark, settings, regs, make_batch, monkeypatch, capsys):
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    # The job's own session is the shared one here (the check points it at this lake itself).
    monkeypatch.setattr("citylake.core.spark.get_session", lambda settings, app_name="citylake": spark)
    reg = regs["housing_fund_units"]
    make_batch(reg, n=20, batch_id="ok")
    make_batch(reg, n=20, batch_id="dupes", mutate=lambda rows: rows[1].update(uscc=rows[0]["uscc"]))

    assert sparkjob.main(["check", "--resource", reg.resource, "--batch", "ok", "--batch", "dupes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["batch_id=ok", "batch_id=dupes"]
    assert "success=True rows=20 quarantined=0 pass_rate=1.0" in lines[0]
    assert "success=False" in lines[1] and "batch not promoted" in lines[1]
    assert read_result(settings, reg, "ok")["success"] is True
    assert read_result(settings, reg, "dupes")["success"] is False
