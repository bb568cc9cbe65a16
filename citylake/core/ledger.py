"""The batch ledger: where every batch of a resource stands, read from the lake in one pass.

Every stage, the receipts, the demo summary, freshness and the directory facts ask the ledger;
none of them reads a marker file itself. A ledger is a snapshot: it lists each zone of the
resource once (raw, standardized, quarantine, quality, receipts) and reads the small marker files
it finds, so its cost grows with the number of batches, not with its square, and on S3 it costs a
handful of LIST requests plus one GET per marker. Build a new one after a stage has written.

A batch moves through these states (:attr:`BatchState.status`)::

    ingested ─conform─▶ conformed ─check─▶ passed ─curate─▶ curated
        │                                   └──▶ blocked (failed the quality gate)
        │    (a quality result counts only for the standardized commit it judged: conforming a
        │     batch again sends it back to check)
        ├──▶ failed (the whole file could not be decoded)
    rejected (refused at ingest: name, size or type)

and, independently, ``receipted`` once the liaison's receipt is written. A rejected, failed or
blocked batch can be reopened (:data:`REOPENABLE`; ``citylake reprocess``, or a re-send of its
bytes): back to ingested, or to conformed for a blocked one. :attr:`BatchState.history` tells
every step a batch went through, reopenings included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.registry import Registration
from citylake.core.settings import Settings

STAGES_WITH_PENDING = ("conform", "check", "curate", "receipt")
REOPENABLE = ("rejected", "failed", "blocked")
# The quality marker's key naming the standardized commit it judged (its ``committed_at``).
QUALITY_OF = "standardized_committed_at"


@dataclass(frozen=True)
class BatchState:
    batch_id: str
    manifest: dict
    standardized: dict | None = None  # the standardized _COMMITTED marker
    quarantine: dict | None = None  # the quarantine _COMMITTED marker
    failure: dict | None = None  # conform refused the whole file
    quality: dict | None = None  # the quality gate's summary marker
    receipted: bool = False
    # The standardized commit (``committed_at``) merged into the curated table, if any.
    curated_commit: str | None = None

    @property
    def curated(self) -> bool:
        """Merged into the curated table as it is now standardized (conforming again un-merges it)."""
        return self.curated_commit is not None and self.standardized is not None and (
            self.curated_commit == self.standardized.get("committed_at")
        )

    @property
    def ingested(self) -> bool:
        return self.manifest.get("status") == "ingested"

    @property
    def conformed(self) -> bool:
        return self.standardized is not None and self.quarantine is not None

    @property
    def checked(self) -> bool:
        """A quality result of the standardized rows as they are now. Conforming a batch again
        replaces its rows, so a result that names an earlier standardized commit no longer counts."""
        if self.quality is None or self.standardized is None:
            return False
        return self.quality.get(QUALITY_OF) == self.standardized.get("committed_at")

    @property
    def passed(self) -> bool:
        return self.conformed and self.checked and bool(self.quality.get("success"))

    @property
    def status(self) -> str:
        if not self.ingested:
            return "rejected"
        if self.failure:
            return "failed"
        if not self.conformed:
            return "ingested"
        if not self.checked:
            return "conformed"
        if not self.passed:
            return "blocked"
        return "curated" if self.curated else "passed"

    @property
    def history(self) -> list[dict]:
        """What happened to the batch, oldest first: ``{"at", "event", …}``. Received (or refused),
        every reopening recorded in the manifest (``reprocess``/``resent``, with what it was, why,
        by whom), and the latest conform, check and curate as their markers say. A reopened batch's
        earlier conform or check is not kept beyond the event that reopened it."""
        m = self.manifest
        events = [{"at": m.get("received_at"), "event": "received", "file": m.get("source_name")}]
        for e in m.get("history", []):
            events.append(dict(e))
        if self.failure:
            events.append({"at": self.failure.get("failed_at"), "event": "failed",
                           "why": self.failure.get("code")})
        if self.standardized:
            events.append({"at": self.standardized.get("committed_at"), "event": "conformed",
                           "accepted": self.rows_accepted, "quarantined": self.rows_quarantined})
        if self.checked:
            events.append({"at": self.quality.get("checked_at"), "event": "passed" if self.passed else "blocked",
                           "pass_rate": self.quality.get("pass_rate")})
        if self.curated:
            events.append({"at": None, "event": "curated"})
        if not self.ingested and not m.get("history"):
            events[0]["event"] = "rejected"
            events[0]["why"] = m.get("reason")
        return events

    @property
    def received_at(self) -> str:
        return self.manifest.get("received_at", "")

    @property
    def rows_accepted(self) -> int:
        return int(self.standardized["rows"]) if self.conformed else 0

    @property
    def rows_quarantined(self) -> int:
        return int(self.quarantine["rows"]) if self.conformed else 0

    @property
    def quarantine_reasons(self) -> dict[str, int]:
        return dict((self.quarantine or {}).get("reasons", {})) if self.conformed else {}


@dataclass
class Ledger:
    resource: Registration
    batches: list[BatchState] = field(default_factory=list)  # oldest first
    curated: dict | None = None  # the curated pointer
    duplicate_drops: int = 0
    index_entries: int = 0  # checksums already ingested (raw/_index)

    # ---- reading ------------------------------------------------------------------------------
    @classmethod
    def read(cls, source: Settings | Lake, reg: Registration) -> Ledger:
        lake = source if isinstance(source, Lake) else Lake.from_settings(source)
        res, dept = reg.resource, reg.department

        manifests, index_entries = [], 0
        index_prefix = zones.raw_index_dir(dept, res) + "/"
        for f in lake.list_files(zones.raw_dir(dept, res)):
            if f.name == zones.MANIFEST and zones.batch_of(f.path):
                manifests.append(lake.read_json(f.path))
            elif f.path.startswith(index_prefix):
                index_entries += 1
        manifests.sort(key=lambda m: (m["received_at"], m["batch_id"]))
        # One batch, one manifest, whatever happened before ingest claimed batch folders in the index
        # (an ingest interrupted across midnight left a second one under another date): the first.
        seen: set[str] = set()
        manifests = [m for m in manifests if not (m["batch_id"] in seen or seen.add(m["batch_id"]))]

        std = _markers(lake, zones.standardized_root(res), zones.COMMITTED)[zones.COMMITTED]
        quarantine = _markers(lake, zones.quarantine_root(res), zones.COMMITTED, zones.FAILED)
        qua, failed = quarantine[zones.COMMITTED], quarantine[zones.FAILED]
        quality = _markers(lake, zones.quality_root(res), zones.CHECKED)[zones.CHECKED]
        receipted, duplicates = set(), 0
        for f in lake.list_files(zones.receipts_dir(dept, res), recursive=False):
            if zones.is_duplicate_receipt(f.name):
                duplicates += 1
            elif f.name.endswith(".json"):
                receipted.add(f.name[: -len(".json")])
        current = lake.read_json_or(zones.curated_pointer(res))
        in_curated = dict((current or {}).get("batches") or {})

        batches = [
            BatchState(
                batch_id=(b := m["batch_id"]),
                manifest=m,
                standardized=std.get(b),
                quarantine=qua.get(b),
                failure=failed.get(b),
                quality=quality.get(b),
                receipted=b in receipted,
                curated_commit=in_curated.get(b),
            )
            for m in manifests
        ]
        return cls(reg, batches, current, duplicates, index_entries)

    # ---- questions ---------------------------------------------------------------------------
    def batch(self, batch_id: str) -> BatchState:
        for b in self.batches:
            if b.batch_id == batch_id:
                return b
        raise LookupError(f"{self.resource.resource}: no raw batch {batch_id}")

    def manifests(self) -> list[dict]:
        """Every raw batch manifest, oldest first."""
        return [b.manifest for b in self.batches]

    def has(self, batch_id: str) -> bool:
        return any(b.batch_id == batch_id for b in self.batches)

    def promotable(self) -> list[str]:
        """Conformed batches whose quality gate passed: the input of curate."""
        return [b.batch_id for b in self.batches if b.passed]

    def curate_pending(self) -> list[str]:
        """What curate has to do, as batch ids; empty when nothing. Normally the promotable batches
        not merged into the curated table as they are now. When the table must be rebuilt
        (:meth:`stale_in_curated`), every promotable batch plus the stale ones it will drop."""
        stale = self.stale_in_curated()
        if stale:
            return sorted(set(self.promotable()) | set(stale))
        return [b.batch_id for b in self.batches if b.passed and not b.curated]

    def curate_rebuild(self) -> bool:
        return bool(self.stale_in_curated())

    def stale_in_curated(self) -> list[str]:
        """Batches the curated table holds (or holds an older commit of) that are no longer
        promotable as merged: conformed again, blocked on a new check, or gone. A merge cannot take
        their rows out, so curated is then rebuilt from the promotable batches."""
        merged = dict((self.curated or {}).get("batches") or {})
        current = {b.batch_id: b for b in self.batches}
        return sorted(
            b for b, commit in merged.items()
            if b not in current or not current[b].passed or current[b].standardized.get("committed_at") != commit
        )

    def pending(self, stage: str) -> list[str]:
        """Batches waiting for ``stage`` (conform | check | curate | receipt)."""
        if stage == "conform":
            return [b.batch_id for b in self.batches if b.ingested and not b.conformed and not b.failure]
        if stage == "check":
            return [b.batch_id for b in self.batches if b.conformed and not b.checked]
        if stage == "curate":
            return self.curate_pending()
        if stage == "receipt":
            return [b.batch_id for b in self.batches if not b.receipted]
        raise ValueError(f"unknown stage {stage!r} (one of {', '.join(STAGES_WITH_PENDING)})")

    def summary(self) -> dict:
        """What the lake holds for this resource, in figures (the demo summary and `status`)."""
        reasons: Counter = Counter()
        received = standardized = quarantined = 0
        for b in self.batches:
            if b.conformed:
                standardized += b.rows_accepted
                quarantined += b.rows_quarantined
                reasons.update(b.quarantine_reasons)
        received = standardized + quarantined
        checked = [b for b in self.batches if b.checked]
        reg = self.resource
        return {
            "department": reg.department,
            "resource": reg.resource,
            "name": reg.name,
            "batches": len(self.batches),
            "rejected_files": sum(1 for b in self.batches if not b.ingested),
            "received": received,
            "standardized": standardized,
            "quarantined": quarantined,
            "reasons": dict(reasons.most_common()),
            "quality_passed": sum(1 for b in checked if b.passed),
            "quality_checked": len(checked),
            "blocked": [b.batch_id for b in self.batches if b.status == "blocked"],
            "curated": (self.curated or {}).get("rows", 0),
            "curated_version": (self.curated or {}).get("version"),
            "duplicate_drops": self.duplicate_drops,
        }


def batch_state(lake: Lake, reg: Registration, manifest: dict) -> BatchState:
    """One batch's state from its own markers (a few reads, no listing): for ingest, which meets
    one batch at a time. Its curated flag is not read (only the whole ledger knows it)."""
    b, res = manifest["batch_id"], reg.resource
    return BatchState(
        batch_id=b,
        manifest=manifest,
        standardized=lake.read_json_or(zones.standardized_marker(res, b)),
        quarantine=lake.read_json_or(zones.quarantine_marker(res, b)),
        failure=lake.read_json_or(zones.failure_marker(res, b)),
        quality=lake.read_json_or(zones.quality_marker(res, b)),
        receipted=lake.exists(zones.receipt_base(reg.department, res, b) + ".json"),
    )


def _markers(lake: Lake, root: str, *names: str) -> dict[str, dict[str, dict]]:
    """name → batch id → content of each ``<root>/batch_id=<b>/<name>``, from one listing of ``root``."""
    out: dict[str, dict[str, dict]] = {name: {} for name in names}
    for f in lake.list_files(root):
        if f.name in out:
            batch = zones.batch_of(f.path[len(root) + 1:])
            if batch:
                marker = lake.read_json_or(f.path)
                if marker is not None:
                    out[f.name][batch] = marker
    return out
