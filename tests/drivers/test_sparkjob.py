"""spark-submit of a Spark step whose lease another run holds exits 75 with the busy line on stderr."""

from __future__ import annotations

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
