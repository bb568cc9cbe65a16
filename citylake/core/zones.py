"""Where everything lives in the lake: zone paths and the names of the marker files.

This is the only module that spells a zone layout or a marker name; every stage, the ledger and
the reports ask it. Paths are relative to the lake root (see :class:`citylake.core.lake.Lake`).

Layout (docs/zones.md)::

    landing/<dept>/<resource>/<file>                                  liaisons' drops
    raw/<dept>/<resource>/ingest_date=<d>/batch_id=<b>/<file>         original bytes
    raw/<dept>/<resource>/ingest_date=<d>/batch_id=<b>/manifest.json  what was received
    raw/<dept>/<resource>/_index/<sha256>.json                        checksums already ingested
    raw/<dept>/<resource>/_watermark.json                             SQL extraction watermark
    standardized/<resource>/batch_id=<b>/_COMMITTED.json              a batch's rows are in its table
    warehouse/<namespace>/<table>/data|metadata/…                     Iceberg tables (core/tables.py)
    quarantine/<resource>/batch_id=<b>/*.parquet + _COMMITTED.json    rejected rows, with reasons
    quarantine/<resource>/batch_id=<b>/_FAILED.json                   the whole file was refused
    quality/<resource>/batch_id=<b>/result.json, validation.json     the gate's result
    quality/<resource>/batch_id=<b>/_CHECKED.json                     its short summary, written last
    curated/<resource>/_CURRENT.json                                  what the curated table holds
    receipts/<dept>/<resource>/<batch>.json|.txt                      the liaison's receipt
    receipts/<dept>/<resource>/<stamp>_<sha>.duplicate.json|.txt      a drop seen before
    _staging/<stage>/…                                                work in progress
"""

from __future__ import annotations

from citylake.core.lake import Lake

ZONES = ("landing", "raw", "standardized", "quarantine", "curated", "quality", "receipts", "warehouse", "_staging")

# The Iceberg tables' files (data and metadata) live under this folder of the lake.
WAREHOUSE_DIR = "warehouse"

# Marker and metadata file names. A marker is written last: its presence means the folder is whole.
MANIFEST = "manifest.json"
COMMITTED = "_COMMITTED.json"
FAILED = "_FAILED.json"
QUALITY_RESULT = "result.json"
QUALITY_VALIDATION = "validation.json"
CHECKED = "_CHECKED.json"
CURRENT = "_CURRENT.json"
WATERMARK = "_watermark.json"
INDEX_DIR = "_index"
DUPLICATE_SUFFIX = ".duplicate"
EARLIER_DIR = "earlier"  # receipts of batches reprocessed since
BATCH_DIR_PREFIX = "batch_id="


def batch_dir_name(batch_id: str) -> str:
    return f"{BATCH_DIR_PREFIX}{batch_id}"


def batch_of(path: str) -> str | None:
    """The batch id named by a ``batch_id=`` folder in ``path``, if any."""
    for part in path.split("/"):
        if part.startswith(BATCH_DIR_PREFIX):
            return part[len(BATCH_DIR_PREFIX):]
    return None


# ---- zone folders -------------------------------------------------------------------------
def landing_dir(dept: str, resource: str) -> str:
    return Lake.join("landing", dept, resource)


def raw_dir(dept: str, resource: str) -> str:
    return Lake.join("raw", dept, resource)


def raw_batch_dir(dept: str, resource: str, ingest_date: str, batch_id: str) -> str:
    return Lake.join(raw_dir(dept, resource), f"ingest_date={ingest_date}", batch_dir_name(batch_id))


def raw_index_dir(dept: str, resource: str) -> str:
    return Lake.join(raw_dir(dept, resource), INDEX_DIR)


def raw_index_path(dept: str, resource: str, sha256: str) -> str:
    return Lake.join(raw_index_dir(dept, resource), f"{sha256}.json")


def manifest_path(batch_dir: str) -> str:
    return Lake.join(batch_dir, MANIFEST)


def watermark_path(dept: str, resource: str) -> str:
    return Lake.join(raw_dir(dept, resource), WATERMARK)


def standardized_root(resource: str) -> str:
    return Lake.join("standardized", resource)


def standardized_dir(resource: str, batch_id: str) -> str:
    return Lake.join(standardized_root(resource), batch_dir_name(batch_id))


def quarantine_root(resource: str) -> str:
    return Lake.join("quarantine", resource)


def quarantine_dir(resource: str, batch_id: str) -> str:
    return Lake.join(quarantine_root(resource), batch_dir_name(batch_id))


def quality_root(resource: str) -> str:
    return Lake.join("quality", resource)


def quality_dir(resource: str, batch_id: str) -> str:
    return Lake.join(quality_root(resource), batch_dir_name(batch_id))


def curated_dir(resource: str) -> str:
    return Lake.join("curated", resource)


def receipts_dir(dept: str, resource: str) -> str:
    return Lake.join("receipts", dept, resource)


def staging_dir(*parts: str) -> str:
    return Lake.join("_staging", *parts)


# ---- markers --------------------------------------------------------------------------------
def standardized_marker(resource: str, batch_id: str) -> str:
    return Lake.join(standardized_dir(resource, batch_id), COMMITTED)


def quarantine_marker(resource: str, batch_id: str) -> str:
    return Lake.join(quarantine_dir(resource, batch_id), COMMITTED)


def failure_marker(resource: str, batch_id: str) -> str:
    return Lake.join(quarantine_dir(resource, batch_id), FAILED)


def quality_result_path(resource: str, batch_id: str) -> str:
    return Lake.join(quality_dir(resource, batch_id), QUALITY_RESULT)


def quality_validation_path(resource: str, batch_id: str) -> str:
    return Lake.join(quality_dir(resource, batch_id), QUALITY_VALIDATION)


def quality_marker(resource: str, batch_id: str) -> str:
    return Lake.join(quality_dir(resource, batch_id), CHECKED)


def curated_pointer(resource: str) -> str:
    return Lake.join(curated_dir(resource), CURRENT)


def receipt_base(dept: str, resource: str, batch_id: str) -> str:
    """``<base>.json`` and ``<base>.txt`` are the batch's receipt."""
    return Lake.join(receipts_dir(dept, resource), batch_id)


def duplicate_receipt_base(dept: str, resource: str, stamp: str, sha256: str) -> str:
    return Lake.join(receipts_dir(dept, resource), f"{stamp}_{sha256[:16]}{DUPLICATE_SUFFIX}")


def earlier_receipt_base(dept: str, resource: str, batch_id: str, at: str) -> str:
    """Where a batch's receipt goes when the batch is reprocessed (``at``: when), so the liaison's
    folder keeps every receipt a batch had and its current one stays at :func:`receipt_base`."""
    stamp = "".join(ch for ch in at[:19] if ch.isdigit())
    return Lake.join(receipts_dir(dept, resource), EARLIER_DIR, f"{batch_id}.{stamp}")


def is_duplicate_receipt(name: str) -> bool:
    return name.endswith(f"{DUPLICATE_SUFFIX}.json")
