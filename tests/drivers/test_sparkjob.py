"""spark-submit of a Spark step whose lease another run holds exits 75 with the busy line on stderr."""

from __future__ import annotations

import pytest

from citylake.core.lease import BUSY_EXIT, hold
from citylake.drivers import sparkjob


def test_a_busy_step_exits_75_with_the_holder_on_stderr(settings, monkeypatch, capsys):
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    # The lease is refused before the stage touches Spark: no session needed.
    monkeypatch.setattr("citylake.core.spark.get_session", lambda settings, app_name="citylake": object())
    with hold(settings, "enterprise_registration", "conform", label="citylake run") as other:
        code = sparkjob.main(["conform", "--resource", "enterprise_registration"])
    out, err = capsys.readouterr()
    assert code == BUSY_EXIT and out == ""
    assert err.startswith("ResourceBusy: resource enterprise_registration is busy: stage conform held by "
                          f"{other.holder} since ")


class _Result:
    def __init__(self, **fields):
        self.fields = fields

    def as_dict(self):
        return self.fields


def _env(settings, monkeypatch):
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("citylake.core.spark.get_session", lambda settings, app_name="citylake": object())


def test_one_application_runs_every_resource_and_a_failure_does_not_stop_the_others(settings, monkeypatch, capsys):
    _env(settings, monkeypatch)
    ran = []

    def run_step(step, settings, reg, *, spark=None, batch_ids=None):
        ran.append((step, reg.resource))
        if reg.resource == "enterprise_registration":
            raise ValueError("200 rows decoded but 190 written")
        return _Result(resource=reg.resource, rows=3)

    monkeypatch.setattr(sparkjob, "run_step", run_step)
    code = sparkjob.main(["conform", "--resource", "enterprise_registration", "--resource", "resident_population",
                          "--resource", "air_quality_hourly"])
    out, err = capsys.readouterr()
    assert code == sparkjob.FAILED_EXIT
    assert ran == [("conform", "enterprise_registration"), ("conform", "resident_population"),
                   ("conform", "air_quality_hourly")], "the failure did not stop the resources after it"
    assert out.splitlines() == ["resident_population: resource=resident_population rows=3",
                                "air_quality_hourly: resource=air_quality_hourly rows=3"]
    assert "Traceback" in err, "the failing resource's traceback is in the log"
    assert err.rstrip().splitlines()[-1] == ("citylake-failed resource=enterprise_registration: "
                                             "ValueError: 200 rows decoded but 190 written")
    assert sparkjob.parse_failures(err) == {"enterprise_registration": "ValueError: 200 rows decoded but 190 written"}


def test_busy_everywhere_exits_75_and_an_unknown_resource_stops_before_any_work(settings, monkeypatch, capsys):
    _env(settings, monkeypatch)
    with hold(settings, "enterprise_registration", "curate"), hold(settings, "resident_population", "curate"):
        code = sparkjob.main(["curate", "--resource", "enterprise_registration", "--resource", "resident_population"])
    _, err = capsys.readouterr()
    assert code == BUSY_EXIT
    assert set(sparkjob.parse_failures(err)) == {"enterprise_registration", "resident_population"}

    monkeypatch.setattr(sparkjob, "run_step", lambda *a, **k: pytest.fail("nothing may run"))
    assert sparkjob.main(["check", "--resource", "resident_population", "--resource", "no_such_resource"]) == 2
    assert "no_such_resource" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sparkjob.main(["conform", "--resource", "a", "--resource", "b", "--batch", "x"])
