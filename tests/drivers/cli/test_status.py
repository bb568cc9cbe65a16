"""`citylake status`: each resource's batches and where they stand, from the ledger."""

from __future__ import annotations

import json

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import QUALITY_OF
from citylake.drivers.cli import main

RES, DEPT = "enterprise_registration", "scjg"
COMMITTED = "2026-11-01T00:05:00+00:00"


def _batch(lake, batch, *, status="ingested", conformed=True, success=None, reason_zh=None):
    batch_dir = zones.raw_batch_dir(DEPT, RES, "2026-11-01", batch)
    lake.write_json(zones.manifest_path(batch_dir), {
        "batch_id": batch, "received_at": "2026-11-01T00:00:00+00:00", "status": status,
        "source_name": f"{batch}.csv", "raw_path": f"{batch_dir}/{batch}.csv", "reason_zh": reason_zh})
    if conformed:
        lake.write_json(zones.standardized_marker(RES, batch), {"rows": 90, "committed_at": COMMITTED})
        lake.write_json(zones.quarantine_marker(RES, batch), {"rows": 10, "reasons": {"uscc_check:uscc": 10}})
    if success is not None:
        failures = [] if success else [{"expectation": "expect_x", "description_zh": "统一社会信用代码不得为空"}]
        lake.write_json(zones.quality_marker(RES, batch), {
            "success": success, "pass_rate": 1.0 if success else 0.5, "blocking_failures": failures,
            QUALITY_OF: COMMITTED})


def test_status_shows_each_batch_where_it_stands_and_why(env, capsys):
    lake = Lake.from_settings(env)
    _batch(lake, "good", success=True)
    _batch(lake, "stopped", success=False)
    _batch(lake, "refused", status="rejected", conformed=False, reason_zh="文件为空（0 字节）")
    assert main(["status", "--resource", RES]) == 0
    out = capsys.readouterr().out
    assert "scjg/enterprise_registration" in out and "暂无数据" in out  # nothing curated yet
    assert "waiting: curate 1, receipt 3" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and "why" not in line
             and not line.strip().startswith("waiting")}
    assert "passed" in lines["good"] and "90 accepted / 10 quarantined" in lines["good"]
    assert "blocked" in lines["stopped"] and "2026-11-01 08:00:00" in lines["stopped"], "Beijing time"
    assert "rejected" in lines["refused"]
    assert "why: 统一社会信用代码不得为空" in out and "why: 文件为空（0 字节）" in out


def test_status_json_has_the_same_facts(env, capsys):
    lake = Lake.from_settings(env)
    _batch(lake, "stopped", success=False)
    assert main(["status", "--department", DEPT, "--json"]) == 0
    [facts] = json.loads(capsys.readouterr().out)
    assert facts["resource"] == RES and facts["freshness"] == "no_data"
    assert facts["pending"] == {"conform": [], "check": [], "curate": [], "receipt": ["stopped"]}
    [b] = facts["batches"]
    assert (b["status"], b["accepted"], b["quarantined"], b["receipted"]) == ("blocked", 90, 10, False)
    assert b["why"] == "统一社会信用代码不得为空"


def test_status_every_resource_and_unknown_names(env, capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert out.count("no batch received yet") == 6
    assert main(["status", "--resource", "typo"]) == 2
    assert "registered resources: air_quality_hourly" in capsys.readouterr().err


def test_a_blocked_batch_says_what_the_rule_found(env, capsys):
    lake = Lake.from_settings(env)
    _batch(lake, "stopped", success=False)
    marker = lake.read_json(zones.quality_marker(RES, "stopped"))
    marker["blocking_failures"] = [{"expectation": "citylake_quarantine_rate_at_most", "description_zh": "隔离率不超过50%",
                                    "observed": {"observed_value": 0.636, "quarantined": 1272, "received": 2000}}]
    lake.write_json(zones.quality_marker(RES, "stopped"), marker)
    assert main(["status", "--resource", RES, "--json"]) == 0
    [facts] = json.loads(capsys.readouterr().out)
    assert facts["batches"][0]["why"] == "隔离率不超过50%（实际 63.6%，隔离 1,272 / 2,000 行）"
