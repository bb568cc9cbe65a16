"""The liaison's rejected rows (citylake.stages.rejects): every quarantined row but exact duplicates,
once, with its source row, the values as sent, its reasons in Chinese and the allowed codes of a
code list; the instructions sheet; the quarantine read a record batch at a time.

On the query lake the chain built from generated drops (tests/stages/test_query.py, with bad rows of
every kind), and on a small lake where the chain conformed a hand-written CSV with a record over two
lines."""

from __future__ import annotations

from collections import Counter

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from citylake.core import zones
from citylake.core.lake import Lake
from citylake.core.ledger import Ledger
from citylake.core.reasons import REASONS, split_reason
from citylake.core.registry import Registration, load_registrations
from citylake.core.settings import Settings
from citylake.stages import chain, rejects
from tests.stages.test_query import RESOURCES, query_lake


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory) -> Settings:
    return query_lake(spark, tmp_path_factory)


@pytest.fixture(scope="module")
def regs(lake) -> dict[str, Registration]:
    return {r.resource: r for r in load_registrations(lake.resources_dir)}


def _quarantine(settings: Settings, reg: Registration) -> dict[tuple[str, int], dict]:
    """(batch, source row) → the quarantine file's row, every batch, read whole (a test may)."""
    lake = Lake.from_settings(settings)
    out = {}
    for b in Ledger.read(lake, reg).batches:
        for f in lake.list_files(zones.quarantine_dir(reg.resource, b.batch_id)):
            if f.name.endswith(".parquet") and not f.name.startswith((".", "_")):
                with lake.open_read(f.path) as fh:
                    for row in pq.ParquetFile(fh).read().to_pylist():
                        assert (b.batch_id, row["_source_row"]) not in out
                        out[b.batch_id, row["_source_row"]] = row
    return out


def _sheets(path) -> tuple[list[str], list[dict], list[tuple]]:
    wb = load_workbook(path, read_only=True)
    assert wb.sheetnames == [rejects.ROWS_SHEET, rejects.HELP_SHEET]
    header, *rows = [list(r) for r in wb[rejects.ROWS_SHEET].iter_rows(values_only=True)]
    help_rows = [tuple(v for v in r if v is not None) for r in wb[rejects.HELP_SHEET].iter_rows(values_only=True)]
    # a read-only sheet leaves out a row's empty cells at its end
    rows = [r + [None] * (len(header) - len(r)) for r in rows]
    return header, [dict(zip(header, r, strict=True)) for r in rows], help_rows


def _blank(value):
    return None if value in (None, "") else value


def _first_row(cell) -> int:
    return cell if isinstance(cell, int) else int(str(cell).split("–")[0])


@pytest.mark.spark
@pytest.mark.parametrize("resource", RESOURCES)
def test_every_quarantined_row_but_exact_duplicates_appears_once_as_sent(lake, regs, resource, tmp_path):
    reg = regs[resource]
    expected = _quarantine(lake, reg)
    duplicates = {k for k, row in expected.items() if row["_reasons"] == ["duplicate_row"]}
    reasons = Counter(t for row in expected.values() for t in row["_reasons"])
    # the generated drops hold bad rows of every kind, exact duplicates and a code-list value among them
    assert len(expected) > 10 and duplicates and any(t.startswith("not_in_codelist:") for t in reasons)

    written = rejects.write_workbook(lake, reg, tmp_path / "rejects.xlsx")
    header, rows, _ = _sheets(tmp_path / "rejects.xlsx")
    titles = [f.title for f in reg.fields]
    assert header == ["批次", "源文件行号", *titles, "问题说明", "可选值", rejects.RAW_COLUMN]
    assert written.rows == len(rows) == len(expected) - len(duplicates)
    assert written.duplicates == len(duplicates)

    got = {(r["批次"], _first_row(r["源文件行号"])): r for r in rows}
    assert len(got) == len(rows), "each row once"
    assert set(got) == set(expected) - duplicates
    for key, row in got.items():
        sent = expected[key]
        assert row["源文件行号"] == sent["_source_row"] == sent["_source_row_end"]  # single-line records here
        for f in reg.fields:  # the original text, not masked (the department's own data)
            assert _blank(row[f.title]) == _blank(sent[f.name]), (key, f.name)
        assert _blank(row[rejects.RAW_COLUMN]) == sent["_raw_line"]
        problems = row["问题说明"]
        for text in sent["_reasons"]:
            code, fld = split_reason(text)
            assert REASONS[code][0] in problems, (key, text)
            if fld:
                assert f"{REASONS[code][0]}（{reg.field_map[fld].title}）" in problems
        assert not any(c.isascii() and c.isalpha() for c in problems), f"all Chinese: {problems}"
        coded = [split_reason(t)[1] for t in sent["_reasons"] if t.startswith("not_in_codelist:")]
        if coded:
            spec = reg.field_map[coded[0]]
            assert row["可选值"].startswith(f"{spec.title}：")
            assert all(f"{code}={meaning}" in row["可选值"] or (code == meaning and code in row["可选值"])
                       for code, meaning in spec.codes.items())
        else:
            assert row["可选值"] is None
    personal = [f.title for f in reg.fields if f.sensitivity == "personal"]
    assert any(isinstance(r[t], str) and len(r[t]) > 2 and "*" not in r[t] for r in rows for t in personal), \
        "personal values as sent, not masked"


@pytest.mark.spark
def test_the_instructions_sheet_says_how_to_resend_and_counts_every_reason(lake, regs, tmp_path):
    reg = regs["resident_population"]
    batches = rejects.quarantined_batches(lake, reg)
    assert batches
    rejects.write_workbook(lake, reg, tmp_path / "r.xlsx")
    _, _, help_rows = _sheets(tmp_path / "r.xlsx")
    text = "\n".join(" ".join(map(str, r)) for r in help_rows)
    assert f"landing/{reg.department}/{reg.resource}/" in text and reg.source.pattern in text
    assert reg.source.encoding in text and "无需重报" in text
    for b in batches:
        line = next(r for r in help_rows if r and r[0] == b.batch_id)
        assert line[1:] == (b.file, b.received_at[:19].replace("T", " "), b.quarantined, b.to_correct,
                            b.information_only)
        assert b.received_at.endswith("+08:00")
    counted = Counter()
    for b in batches:
        counted.update(b.reasons)
    for text_, n in counted.items():
        code, fld = split_reason(text_)
        title = reg.field_map[fld].title if fld else "—"
        assert (REASONS[code][0], title, n, *(("无需处理",) if code == "duplicate_row" else ())) in help_rows


@pytest.mark.spark
def test_a_department_lists_its_own_batches_with_quarantined_rows(lake, regs):
    all_regs = list(regs.values())
    gaj = rejects.department_batches(lake, all_regs, "gaj")
    assert [r["resource"] for r in gaj] == ["resident_population"]
    ledger = Ledger.read(lake, regs["resident_population"])
    assert [(b["batch_id"], b["quarantined"]) for b in gaj[0]["batches"]] == [
        (b.batch_id, b.rows_quarantined) for b in ledger.batches if b.rows_quarantined]
    b = gaj[0]["batches"][0]
    assert b["to_correct"] + b["duplicates_ignored"] == b["quarantined"] and b["duplicates_ignored"] > 0
    assert b["received_at"].endswith("+08:00") and b["file"]
    assert rejects.department_batches(lake, all_regs, "mzj") == []
    assert {r["department"] for r in rejects.department_batches(lake, all_regs, None)} >= {"gaj", "scjg"}
    with pytest.raises(rejects.NoQuarantine, match="no batch"):
        rejects.select_batches(lake, regs["resident_population"], "../enterprise_registration")


@pytest.mark.spark
def test_the_quarantine_is_read_one_record_batch_at_a_time(lake, regs, tmp_path, monkeypatch):
    reg = regs["resident_population"]
    (batch,) = rejects.quarantined_batches(lake, reg)
    whole = list(rejects.iter_rows(Lake.from_settings(lake), reg, batch.batch_id))

    seen: list[int] = []
    original = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        assert kwargs.get("batch_size") == 4
        for rb in original(self, *args, **kwargs):
            seen.append(rb.num_rows)
            yield rb

    def never(*_args, **_kwargs):
        raise AssertionError("the quarantine must not be read whole")

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(pq.ParquetFile, "read", never)
    monkeypatch.setattr(pq, "read_table", never)
    small = list(rejects.iter_rows(Lake.from_settings(lake), reg, batch.batch_id, batch_size=4))
    assert len(seen) > 1 and max(seen) <= 4 and sum(seen) == batch.quarantined == len(small)

    def content(rows):
        return sorted((r.source_row, r.source_row_end, tuple(r.reasons), r.raw_line, tuple(sorted(r.values.items())))
                      for r in rows)

    assert content(small) == content(whole)
    seen.clear()
    written = rejects.write_workbook(lake, reg, tmp_path / "small.xlsx", batch_size=4)
    assert len(seen) > 1 and written.rows == batch.to_correct


CSV = ("统一社会信用代码,企业名称,法定代表人,法定代表人身份证号码,注册资本,成立日期,住所所在行政区划,住所,登记状态\n"
       "91110000802100433B,郑州甲商贸有限公司,张三,11010519491231002X,100,2020-01-01,410102,郑州市中原区建设路1号,存续\n"
       '91110000802100433B,=1+1,李四,11010519491231002X,50,2021-03-01,410102,"郑州市中原区\n建设路2号",歇业\n'
       "91110000802100433B,郑州甲商贸有限公司,张三,11010519491231002X,100,2020-01-01,410102,郑州市中原区建设路1号,存续\n")


@pytest.mark.spark
def test_a_record_over_several_lines_gives_its_row_range(spark, settings, tmp_path):
    reg = next(r for r in load_registrations(settings.resources_dir) if r.resource == "enterprise_registration")
    Lake.from_settings(settings).write_bytes(f"{zones.landing_dir(reg.department, reg.resource)}/企业登记信息_20260106.csv",
                                             CSV.encode("gbk"))
    chain.run_resource(spark, settings, reg, only=("detect", "ingest", "conform"))
    (batch,) = rejects.quarantined_batches(settings, reg)
    assert (batch.quarantined, batch.reasons) == (2, {"not_in_codelist:status": 1, "duplicate_row": 1})

    written = rejects.write_workbook(settings, reg, tmp_path / "r.xlsx", batch.batch_id)
    _, rows, _ = _sheets(tmp_path / "r.xlsx")
    assert written.rows == 1 and written.duplicates == 1
    (row,) = rows
    assert row["源文件行号"] == "3–4"
    assert row["企业名称"] == "=1+1", "text as sent, never a formula"
    assert row["住所"] == "郑州市中原区\n建设路2号" and row["登记状态"] == "歇业"
    assert row["问题说明"] == "代码不在代码表中（登记状态）"
    assert row["可选值"].startswith("登记状态：存续=存续（在营、开业、在册）；在业；吊销；注销；迁出")
