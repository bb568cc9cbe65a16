"""`make bench` (citylake_dev.bench): every figure is there and the figures agree with each other.

The bench runs in-process at a tiny size on the shared Spark session. The speeds themselves are
not judged here: the bench reports, it asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json

import psutil
import pytest

from citylake.core.registry import find_registration
from citylake.core.settings import REPO_ROOT
from citylake_dev import bench

ROWS = 2000
RESOURCE = "enterprise_registration"


def _close(a: float, b: float) -> bool:
    # The JSON rounds seconds to 0.1 ms and rates to 0.1: compare at that precision.
    return a == pytest.approx(b, rel=5e-3, abs=0.15)


def _rates_agree(step: dict, rows: int, cores: int) -> None:
    assert "error" not in step, step.get("error")
    assert step["seconds"] > 0
    assert _close(step["rows_per_s"], rows / step["seconds"])
    assert _close(step["rows_per_s_per_core"], step["rows_per_s"] / cores)
    assert _close(step["us_per_row"], step["seconds"] / rows * 1e6)
    assert step["peak_rss_bytes"] >= step["start_rss_bytes"] > 0


@pytest.fixture(scope="module")
def measured(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bench")
    report, path = bench.run_bench([ROWS], RESOURCE, spark=spark, out_dir=tmp / "out", work_dir=tmp / "work",
                                   log=lambda _msg: None)
    return report, path


@pytest.mark.spark
@pytest.mark.slow
def test_report_is_written_as_json(measured):
    report, path = measured
    assert path.parent.name == "out" and path.name.startswith("bench-") and path.suffix == ".json"
    assert json.loads(path.read_text(encoding="utf-8")) == report
    assert report["sizes"] == [ROWS] and report["resource"] == RESOURCE
    assert report["pipeline_steps"] == list(bench.PIPELINE)
    assert report["spark_start"] is None  # the session was the tests', not started by the bench
    assert report["machine"]["cores"] >= 1 and report["versions"]["spark"]


@pytest.mark.spark
@pytest.mark.slow
def test_pipeline_figures(measured):
    report, _ = measured
    [res] = report["results"]
    cores = report["machine"]["cores"]
    assert res["rows"] == ROWS and res["us_per_row_vs_previous_size"] is None  # one size: no previous
    assert res["generate"]["seconds"] > 0 and res["file"]["bytes"] > 0 and res["file"]["encoding"] == "gbk"
    pipe = res["pipeline"]
    _rates_agree(pipe, ROWS, cores)
    assert list(pipe["stages"]) == list(bench.PIPELINE)
    assert all(s > 0 for s in pipe["stages"].values())
    # The stages are the whole of the pipeline's time.
    assert 0.8 * pipe["seconds"] <= sum(pipe["stages"].values()) <= pipe["seconds"] + 0.01
    # It did the work: one batch in, every row accounted for, the gate passed, curated filled.
    assert pipe["ingest"] == ["ingested"]
    conform = pipe["conform"]
    assert conform["status"] == ["conformed"]
    assert conform["received"] > 0.9 * ROWS
    assert conform["standardized"] + conform["quarantined"] == conform["received"]
    assert pipe["check"]["passed"] == [True]
    assert pipe["curate"]["status"] in ("merged", "rebuilt") and pipe["curate"]["rows"] > 0


@pytest.mark.spark
@pytest.mark.slow
def test_floor_figures_and_ratios(measured):
    report, _ = measured
    [res] = report["results"]
    cores = report["machine"]["cores"]
    for name in bench.FLOORS:
        floor = res["floors"][name]
        _rates_agree(floor, ROWS, cores)
        assert 0.9 * ROWS <= floor["rows_out"] <= ROWS
        assert res["ratios"][name] == pytest.approx(res["pipeline"]["seconds"] / floor["seconds"], rel=1e-2)
    # DuckDB got a UTF-8 copy of the GBK file, made outside its timing.
    assert res["floors"]["duckdb"]["transcode_seconds_untimed"] > 0
    assert res["floors"]["spark_copy"]["encoding"] == "GB18030"


@pytest.mark.spark
@pytest.mark.slow
def test_increment_figures(measured):
    report, _ = measured
    [res] = report["results"]
    inc, pipe = res["increment"], res["pipeline"]
    assert inc["rows"] == round(ROWS * bench.INCREMENT_FRACTION)
    _rates_agree(inc, inc["rows"], report["machine"]["cores"])
    assert inc["cost_vs_full"] == pytest.approx(inc["seconds"] / pipe["seconds"], rel=1e-2)
    assert list(inc["stages"]) == list(bench.PIPELINE)
    # A second batch of changed rows, merged into the curated table by key.
    assert inc["ingest"] == ["ingested"]
    assert inc["conform"]["received"] == inc["rows"]
    assert inc["check"]["passed"] == [True]
    assert inc["curate"]["status"] == "merged"
    # Changed keys, not new ones. A stray new key is possible: a row the full load quarantined as
    # a duplicate within its file comes alone in the increment.
    assert 0 < inc["curate"]["added_records"] <= inc["conform"]["standardized"]
    assert 0 <= inc["curate"]["rows"] - pipe["curate"]["rows"] <= max(1, inc["rows"] // 20)
    assert inc["build_seconds"] > 0


@pytest.mark.spark
@pytest.mark.slow
def test_table_names_every_step(measured):
    report, _ = measured
    text = bench.format_report(report)
    for label in ("citylake pipeline", *bench.FLOOR_LABELS.values(), "1 % increment", *bench.PIPELINE):
        assert label in text
    assert "failed" not in text


@pytest.mark.spark
def test_tree_rss_counts_the_spark_jvm(spark):
    own = psutil.Process().memory_info().rss
    assert bench.tree_rss() > own + 50 * 2**20  # the JVM, a child of this process, is counted


# ---- no Spark --------------------------------------------------------------------------------------
def test_increment_keeps_multiline_cells_encoding_and_keys(tmp_path):
    reg = find_registration(REPO_ROOT / "registrations", RESOURCE)
    header = ["统一社会信用代码", "企业名称", "法定代表人", "住所", "登记状态"]
    # Odd rows have a name the change would repair (blank, a null token, no room for the mark):
    # they are never taken, or the increment would add keys instead of changing them.
    repaired = ["", " ", "无", "企" * 66]
    rows = [[f"KEY{i:04d}", f"企业{i}" if i % 2 == 0 else repaired[i // 2 % 4], "张三", f"郑州市\n{i}号", "存续"]
            for i in range(300)]
    src, dst = tmp_path / "full.csv", tmp_path / "delta.csv"
    with open(src, "w", encoding="gbk", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)
    made = bench.make_increment(src, dst, reg)
    assert made == {"records_in_file": 300, "eligible": 150, "rows": 3, "changed_field": "enterprise_name"}
    data = dst.read_bytes()
    assert b"\r\n" in data
    with open(dst, encoding="gbk", newline="") as f:
        out = list(csv.reader(f))
    assert out[0] == header and len(out) == 4
    by_key = {r[0]: r for r in rows}
    for rec in out[1:]:
        before = by_key[rec[0]]
        assert before[1].startswith("企业")
        assert rec[1] == before[1] + bench.CHANGE_MARK  # the changed non-key value
        assert rec[2:] == before[2:]  # the rest as it was, the multi-line address included
        assert "\n" in rec[3]
    # 1 % of the full load's rows when that is given (the pipeline's count, not the csv module's).
    assert bench.make_increment(src, dst, reg, rows=200)["rows"] == 2


def test_sizes_argument():
    assert bench.parse_sizes("100000,1_000_000") == [100_000, 1_000_000]
    with pytest.raises(argparse.ArgumentTypeError):
        bench.parse_sizes("0")
