"""The truth file: per generated file, how many rows are bad and by which reason.

``$CITYLAKE_HOME/generated/truth.json``, outside the lake so it is never ingested.
"""

from __future__ import annotations

import json
from pathlib import Path

from citylake.core.lake import Lake
from citylake.core.settings import Settings

TRUTH_RELPATH = Path("generated") / "truth.json"


def truth_path(settings: Settings) -> Path:
    return settings.home / TRUTH_RELPATH


def write_truth(settings: Settings, lake: Lake, truth: dict) -> None:
    """Merge this run's files into the truth file; earlier entries stay while their file is unchanged."""
    target = truth_path(settings)
    merged = dict(truth["files"])
    if target.exists():
        try:
            previous = json.loads(target.read_text(encoding="utf-8")).get("files", {})
        except (ValueError, OSError):
            previous = {}
        for path, entry in previous.items():
            if path in merged or not isinstance(entry, dict):
                continue
            try:
                digest, _ = lake.sha256(path)
            except (OSError, FileNotFoundError):
                continue
            if digest == entry.get("sha256"):
                merged[path] = entry
    out = dict(truth)
    out["files"] = dict(sorted(merged.items()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(target)
