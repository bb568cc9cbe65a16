"""The batch ledger: every state a batch can be in, read with one listing per zone."""

from __future__ import annotations

import pytest

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import QUALITY_OF, Ledger
from citylake.core.registry import load_registrations


@pytest.fixture
def reg(settings):
    return {r.resource: r for r in load_registrations(settings.resources_dir)}["enterprise_registration"]


def _manifest(lake, reg, batch, received, status="ingested"):
    batch_dir = zones.raw_batch_dir(reg.department, reg.resource, received[:10], batch)
    lake.write_bytes(f"{batch_dir}/{batch}.csv", b"x")
    lake.write_json(zones.manifest_path(batch_dir), {
        "batch_id": batch, "received_at": received, "status": status, "source_name": f"{batch}.csv",
        "raw_path": f"{batch_dir}/{batch}.csv", "sha256": batch * 4, "size": 1})
    lake.write_json(zones.raw_index_path(reg.department, reg.resource, batch * 4), {"batch_id": batch})


C = "2026-11-01T08:05:00+00:00"


def _conformed(lake, reg, batch, good=9, bad=1, committed_at=C):
    lake.write_json(zones.standardized_marker(reg.resource, batch),
                    {"batch_id": batch, "rows": good, "committed_at": committed_at})
    lake.write_json(zones.quarantine_marker(reg.resource, batch),
                    {"batch_id": batch, "rows": bad, "reasons": {"uscc_check:uscc": bad}})


def _checked(lake, reg, batch, success):
    judged = lake.read_json(zones.standardized_marker(reg.resource, batch))["committed_at"]
    lake.write_json(zones.quality_marker(reg.resource, batch),
                    {"batch_id": batch, "success": success, QUALITY_OF: judged})


@pytest.fixture
def lake_with_every_state(settings, reg):
    """b1 curated · b2 passed (not curated yet) · b3 blocked · b4 conformed · b5 ingested ·
    b6 failed (whole file refused) · b7 rejected at ingest · b8 half-committed (standardized only)."""
    lake = Lake.from_settings(settings)
    for n in range(1, 9):
        _manifest(lake, reg, f"b{n}", f"2026-11-0{n}T08:00:00+00:00", "rejected" if n == 7 else "ingested")
    for b in ("b1", "b2", "b3", "b4"):
        _conformed(lake, reg, b)
    _checked(lake, reg, "b1", True)
    _checked(lake, reg, "b2", True)
    _checked(lake, reg, "b3", False)
    lake.write_json(zones.failure_marker(reg.resource, "b6"), {"batch_id": "b6", "code": "binary_file"})
    lake.write_json(zones.standardized_marker(reg.resource, "b8"), {"batch_id": "b8", "rows": 3})
    lake.write_json(zones.curated_pointer(reg.resource), {"version": "v1", "rows": 9, "batches": {"b1": C},
                                                          "updated_at": "2026-11-01T09:00:00+00:00"})
    lake.write_json(f"{zones.receipt_base(reg.department, reg.resource, 'b1')}.json", {})
    lake.write_json(
        f"{zones.duplicate_receipt_base(reg.department, reg.resource, '20261101T000000Z', 'f' * 64)}.json", {}
    )
    return lake


def test_every_state(lake_with_every_state, reg):
    ledger = Ledger.read(lake_with_every_state, reg)
    assert [b.batch_id for b in ledger.batches] == [f"b{n}" for n in range(1, 9)], "oldest first"
    assert {b.batch_id: b.status for b in ledger.batches} == {
        "b1": "curated",
        "b2": "passed",
        "b3": "blocked",
        "b4": "conformed",
        "b5": "ingested",
        "b6": "failed",
        "b7": "rejected",
        "b8": "ingested",
    }
    assert [b.batch_id for b in ledger.batches if b.receipted] == ["b1"]
    assert ledger.duplicate_drops == 1 and ledger.index_entries == 8


def test_what_waits_at_each_stage(lake_with_every_state, reg):
    ledger = Ledger.read(lake_with_every_state, reg)
    assert ledger.pending("conform") == ["b5", "b8"], "a half-committed batch is conformed again"
    assert ledger.pending("check") == ["b4"]
    assert ledger.promotable() == ["b1", "b2"]
    assert ledger.pending("curate") == ["b2"]
    assert ledger.pending("receipt") == [f"b{n}" for n in range(2, 9)]
    with pytest.raises(ValueError, match="unknown stage"):
        ledger.pending("publish")


def test_curate_rebuilds_when_a_merged_batch_left_the_promotable_set(lake_with_every_state, reg):
    lake = lake_with_every_state
    pointer = lake.read_json(zones.curated_pointer(reg.resource))
    lake.write_json(zones.curated_pointer(reg.resource), {**pointer, "batches": {"b1": C, "b2": C, "b3": C}})
    ledger = Ledger.read(lake, reg)
    assert ledger.stale_in_curated() == ["b3"] and ledger.curate_rebuild()
    assert ledger.pending("curate") == ["b1", "b2", "b3"], "rebuilt from b1, b2; b3's rows dropped"
    lake.write_json(zones.curated_pointer(reg.resource), {**pointer, "batches": {"b1": C, "b2": C}})
    assert Ledger.read(lake, reg).pending("curate") == []


def test_a_batch_conformed_again_after_merging_is_no_longer_curated(lake_with_every_state, reg):
    lake = lake_with_every_state
    _conformed(lake, reg, "b1", committed_at="2026-11-09T08:00:00+00:00")
    ledger = Ledger.read(lake, reg)
    assert ledger.batch("b1").status == "conformed", "back to check"
    assert ledger.stale_in_curated() == ["b1"]
    _checked(lake, reg, "b1", True)
    ledger = Ledger.read(lake, reg)
    assert ledger.batch("b1").status == "passed" and ledger.curate_rebuild()


def test_summary_counts_conformed_batches_only(lake_with_every_state, reg):
    s = Ledger.read(lake_with_every_state, reg).summary()
    assert (s["batches"], s["rejected_files"]) == (8, 1)
    assert (s["standardized"], s["quarantined"], s["received"]) == (36, 4, 40), "b8 is half-committed: not counted"
    assert s["reasons"] == {"uscc_check:uscc": 4}
    assert (s["quality_passed"], s["quality_checked"], s["blocked"]) == (2, 3, ["b3"])
    assert (s["curated"], s["curated_version"], s["duplicate_drops"]) == (9, "v1", 1)


def test_one_listing_per_zone(lake_with_every_state, reg, monkeypatch):
    listed = []
    real = Lake.list_files

    def counting(self, rel, recursive=True):
        listed.append(rel)
        return real(self, rel, recursive)

    monkeypatch.setattr(Lake, "list_files", counting)
    ledger = Ledger.read(lake_with_every_state, reg)
    for stage in ("conform", "check", "curate", "receipt"):
        ledger.pending(stage)
    ledger.summary()
    assert sorted(listed) == sorted(
        [
            zones.raw_dir(reg.department, reg.resource),
            zones.standardized_root(reg.resource),
            zones.quarantine_root(reg.resource),
            zones.quality_root(reg.resource),
            zones.receipts_dir(reg.department, reg.resource),
        ]
    )


def test_an_unknown_batch_is_named(lake_with_every_state, reg):
    with pytest.raises(LookupError, match="enterprise_registration: no raw batch nope"):
        Ledger.read(lake_with_every_state, reg).batch("nope")


def test_an_empty_lake_has_an_empty_ledger(settings, reg):
    ledger = Ledger.read(settings, reg)
    assert ledger.batches == [] and ledger.curated is None and ledger.pending("curate") == []
    assert ledger.summary()["received"] == 0


def test_conforming_a_batch_again_sends_it_back_to_check(lake_with_every_state, reg):
    """A quality result counts only for the standardized rows it judged: a batch conformed again
    (``citylake run --stage conform``, ``sparkjob.py conform --batch``) is not promoted on the old result."""
    lake = lake_with_every_state
    _conformed(lake, reg, "b2", committed_at="2026-11-30T10:00:00+00:00")  # b2 passed before; rows replaced
    ledger = Ledger.read(lake, reg)
    assert ledger.batch("b2").status == "conformed" and not ledger.batch("b2").passed
    assert ledger.pending("check") == ["b2", "b4"]
    assert ledger.promotable() == ["b1"]
    _checked(lake, reg, "b2", True)
    assert Ledger.read(lake, reg).promotable() == ["b1", "b2"]
