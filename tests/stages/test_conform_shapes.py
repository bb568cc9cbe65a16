"""Every shape real exports come in, end to end through ingest and conform: the generator makes the
file and its truth (devtools/citylake_dev/generate/shapes.py), the registration says what the shape
needs, and the batch's records are counted once each: in = standardized + quarantined, each
quarantined record with the reason the truth gives, and what decoding noticed matches the shape."""

from __future__ import annotations

import pytest

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.registry import Registration, load_registrations
from citylake.core.settings import REPO_ROOT, Settings
from citylake.stages import ingest
from citylake.stages.conform import conform_batches
from citylake_dev.generate import generate
from citylake_dev.generate.shapes import SHAPES, problem

ROWS = 80


def _cases() -> list[tuple[str, str]]:
    regs = [r for r in load_registrations(REPO_ROOT / "registrations") if r.source.kind == "file"]
    cases = []
    for shape in SHAPES:
        fit = [r.resource for r in regs if problem(shape, r, ROWS) is None]
        assert fit, f"no registration takes shape {shape}"
        cases.append((shape, fit[0]))
    return cases


def _override(reg: Registration, overrides: dict) -> Registration:
    source = overrides.get("source") or {}
    return reg.model_copy(update={"source": reg.source.model_copy(update=source)}) if source else reg


@pytest.mark.parametrize("shape, resource", _cases(), ids=lambda v: v)
def test_a_shaped_export_is_counted_record_by_record(spark, tmp_path, shape, resource):
    home = tmp_path / "home"
    settings = Settings.from_env(home=home, lake_uri=(home / "lake").as_uri(),
                                 directory_url=f"sqlite:///{home / 'directory.db'}",
                                 resources_dir=REPO_ROOT / "registrations")
    settings.ensure_local_dirs()
    base = next(r for r in load_registrations(settings.resources_dir) if r.resource == resource)
    truth = generate(settings, [base], rows=ROWS, seed=11, shape=shape)
    [(path, expected)] = truth["files"].items()
    reg = _override(base, expected["registration_overrides"])
    [landed] = ingest.ingest_resource(settings, reg)
    assert landed.status == "ingested", landed
    [result] = conform_batches(spark, settings, reg)
    assert result.status == "conformed", result.error

    lake = Lake.from_settings(settings)
    [m] = Ledger.read(lake, reg).manifests()
    std = lake.read_json(zones.standardized_marker(reg.resource, m["batch_id"]))
    qua = lake.read_json(zones.quarantine_marker(reg.resource, m["batch_id"]))
    assert std["rows"] + qua["rows"] == expected["rows"], path
    assert qua["reasons"] == expected["bad"], path
    assert std["rows"] == expected["good"], path

    facts, decode = expected["shape"], std["decode"]
    if shape == "csv_multiline":
        assert decode["multiline_records"] == facts["multiline_records"] > 0
    if shape == "mixed_encoding":
        assert [[r["first"], r["last"]] for r in decode["encoding_ranges"]] == facts["gbk_lines"]
    if shape == "duplicate_headers":
        # the truth counts columns from 0, the receipt from 1
        assert [(d["field"], d["kept_column"], d["column"]) for d in decode["duplicate_columns"]] == [
            (d["field"], d["kept"] + 1, next(c for c in d["columns"] if c != d["kept"]) + 1)
            for d in facts["duplicate_headers"]]
    if shape == "title_rows":
        assert decode["header_row"] == facts["header_row"] > 1
    if shape == "csv_delimiter":
        assert decode["delimiter"] == facts["delimiter"] != ","
    if "short_rows" in expected and expected["format"] != "xls":
        assert decode["padded_rows"] == expected["short_rows"], path
    if shape in ("csv_short_rows", "xlsx_short_rows"):
        assert expected["short_rows"] > 0
