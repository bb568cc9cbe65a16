"""Quality history from stored check results: every batch's verdict, each expectation across
batches, and failing values masked by the column's rule (or withheld)."""

from __future__ import annotations

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import QUALITY_OF
from citylake.core.registry import load_registrations
from citylake.core.settings import REPO_ROOT
from citylake.stages.publish.quality import quality_history

ID = "410105194912310025"


def _people():
    return next(r for r in load_registrations(REPO_ROOT / "registrations") if r.resource == "resident_population")


def _checked(lake: Lake, reg, batch: str, minute: int, results: list[dict], quarantine: dict[str, int]) -> None:
    day, committed = "2026-11-01", f"2026-11-01T00:{minute:02d}:00+00:00"
    manifest = {"batch_id": batch, "source_name": f"{batch}.jsonl", "received_at": committed, "status": "ingested",
                "sha256": batch, "size": 1, "raw_path": "x"}
    lake.write_json(zones.manifest_path(zones.raw_batch_dir(reg.department, reg.resource, day, batch)), manifest)
    lake.write_json(zones.standardized_marker(reg.resource, batch), {"rows": 10, "committed_at": committed})
    lake.write_json(zones.quarantine_marker(reg.resource, batch),
                    {"rows": sum(quarantine.values()), "reasons": quarantine, "committed_at": committed})
    failures = [{"expectation": r["expectation_type"], "column": r["column"], "observed": r.get("observed", {}),
                 "description_zh": r["description_zh"]} for r in results if r["blocking"] and not r["success"]]
    result = {"batch_id": batch, "success": not failures, "blocking_failures": failures, "pass_rate": 0.5,
              "checked_at": committed, QUALITY_OF: committed, "results": results}
    lake.write_json(zones.quality_result_path(reg.resource, batch), result)
    lake.write_json(zones.quality_marker(reg.resource, batch), {k: v for k, v in result.items() if k != "results"})


def _own_batch(batch: str) -> dict:
    return {"expectation_type": "expect_column_values_to_be_in_set", "column": "_batch_id",
            "kwargs": {"column": "_batch_id", "value_set": [batch]}, "blocking": True,
            "description_zh": "批次号与本批次一致：_batch_id", "success": True}


def _unique_id(success: bool) -> dict:
    out = {"expectation_type": "expect_column_values_to_be_unique", "column": "cn_id", "kwargs": {"column": "cn_id"},
           "blocking": True, "description_zh": "公民身份号码取值唯一", "success": success,
           "unexpected_count": 0 if success else 2}
    if not success:
        out["observed"] = {"unexpected_count": 2, "unexpected_sample": [ID, ID], "source_rows": [4, 9]}
    return out


def test_history_across_batches_with_masked_values(tmp_path):
    lake, reg = Lake(str(tmp_path)), _people()
    table_level = {"expectation_type": "expect_table_columns_to_match_set", "column": None, "kwargs": {},
                   "blocking": True, "description_zh": "列与登记一致", "success": False,
                   "observed": {"observed_value": ["cn_id", "姓名"], "details": {"mismatched": ["姓名"]}}}
    _checked(lake, reg, "b1", 1, [_unique_id(True), _own_batch("b1")], {})
    _checked(lake, reg, "b2", 2, [_unique_id(False), table_level, _own_batch("b2")], {"cn_id_check:cn_id": 7})
    _checked(lake, reg, "b3", 3, [_unique_id(True), _own_batch("b3")], {})
    q = quality_history(lake, reg)
    assert [(b["batch_id"], b["success"], b["status"]) for b in q["batches"]] == [
        ("b1", True, "passed"), ("b2", False, "blocked"), ("b3", True, "passed")]
    [b2] = [b for b in q["batches"] if not b["success"]]
    assert b2["reasons"] == [{"reason": "cn_id_check:cn_id", "count": 7, "examples": []}]
    unique = next(e for e in q["expectations"] if e["expectation_type"] == "expect_column_values_to_be_unique")
    assert [unique["history"][b]["success"] for b in ("b1", "b2", "b3")] == [True, False, True]
    assert unique["failed"] == 1 and unique["column_title"] == "公民身份号码"
    assert unique["last_failure"]["observed"]["unexpected_sample"] == ["410105********0025"] * 2
    assert unique["last_failure"]["observed"]["source_rows"] == [4, 9]
    assert len([e for e in q["expectations"] if e["column"] == "_batch_id"]) == 1, "one rule though its set names the batch"
    columns = next(e for e in q["expectations"] if e["column"] is None)
    assert list(columns["history"]) == ["b2"], "an expectation a batch did not have is not in its history"
    assert columns["last_failure"]["observed"].get("values_withheld") is True
    assert "observed_value" not in columns["last_failure"]["observed"]
    assert ID not in repr(q) and "姓名" not in repr(columns["last_failure"])


def test_no_checked_batch_gives_an_empty_history(tmp_path):
    q = quality_history(Lake(str(tmp_path)), _people())
    assert q == {"resource": "resident_population", "batches": [], "expectations": []}
