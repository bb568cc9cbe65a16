"""`citylake history`: the table's snapshots with their batches and rows, from table metadata, and
how to read the table as of one; helpful when there is nothing yet or the name is wrong."""

from __future__ import annotations

import json

import pytest

from citylake.core.registry import load_registrations
from citylake.stages.curate import curate_resource
from citylake.stages.maintain import maintain_resource
from tests.drivers.cli.helpers import run
from tests.stages.test_curate import put_batch

RES = "resident_population"



@pytest.fixture
def regs(settings):
    return load_registrations(settings.resources_dir)


def test_history_names_each_merge_its_batches_and_rows(spark, env, regs, capsys):
    reg = next(r for r in regs if r.resource == RES)
    put_batch(spark, env, reg, "b1", "2026-11-01T00:00:00+00:00",
              [("11010519491231002X", "张三", None), ("360426199101010071", "李四", None)])
    first = curate_resource(spark, env, reg)
    put_batch(spark, env, reg, "b2", "2026-11-02T00:00:00+00:00", [("11010519491231002X", "张三丰", None)])
    second = curate_resource(spark, env, reg)
    maintain_resource(spark, env, reg)  # a compaction: Iceberg's replace, no batches
    capsys.readouterr()

    code, out, err = run(capsys, "history", RES)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("gaj.resident_population  户籍人口基本信息  (curated, 4 snapshot(s), times Asia/Shanghai)")
    merge1 = next(line for line in lines if line.strip().startswith(first.version))
    merge2 = next(line for line in lines if line.strip().startswith(second.version))
    assert merge1.split()[3:] == ["merge", "2", "0", "2", "b1"], merge1
    assert merge2.split()[3:] == ["merge", "1", "1", "2", "b2"], "one row replaced: a position delete"
    # The compaction commits (rewrite, then dangling deletes dropped): Iceberg's replace, rows unchanged.
    current = next(line for line in lines if line.endswith("← current")).split()
    assert current[3] == "replace" and current[6:8] == ["2", "—"], current
    assert "  replace: files compacted by the nightly maintenance; the rows did not change" in lines
    assert f"SELECT * FROM lake.gaj.resident_population VERSION AS OF {first.version}" in out
    assert f'catalog.load_table("gaj.resident_population").scan(snapshot_id={first.version}).to_arrow()' in out
    assert "older than 30 days are expired" in out

    code, out, _ = run(capsys, "history", RES, "--json")
    facts = json.loads(out)
    assert code == 0 and facts["table"] == "gaj.resident_population" and facts["exists"]
    merges = [s for s in facts["snapshots"] if s["operation"] == "merge"]
    assert [(s["batches"], s["rows_added"], s["rows_deleted"], s["rows"]) for s in merges] == [
        (["b1"], 2, 0, 2), (["b2"], 1, 1, 2)]
    assert facts["snapshots"][-1]["current"] and facts["snapshots"][-1]["operation"] == "replace"
    assert facts["snapshots"][-1]["rows"] == 2, "compaction changes no row"
    assert facts["snapshots"][0]["committed_at"].endswith("+08:00")
    assert facts["read_as_of"]["spark_sql"].endswith(f"VERSION AS OF {first.version}")

    code, out, _ = run(capsys, "history", RES, "--table", "standardized", "--json", "--limit", "2")
    facts = json.loads(out)
    assert facts["table"] == "standardized.resident_population" and len(facts["snapshots"]) == 2
    conforms = [s for s in facts["snapshots"] if s["operation"] == "conform"]
    assert [s["batches"] for s in conforms][-1] == ["b2"]


def test_nothing_curated_yet_is_said_plainly(env, capsys):
    code, out, err = run(capsys, "history", RES)
    assert code == 0 and err == ""
    assert out.startswith("gaj.resident_population: nothing curated yet for resident_population")
    code, out, _ = run(capsys, "history", RES, "--table", "standardized", "--json")
    facts = json.loads(out)
    assert code == 0 and facts["exists"] is False and facts["snapshots"] == []


def test_unknown_resource_lists_the_registered_ones(env, regs, capsys):
    code, out, err = run(capsys, "history", "resident_populaton")
    assert code == 2 and out == ""
    names = ", ".join(sorted(r.resource for r in regs))
    assert err == f"citylake history: error: unknown resource: resident_populaton; registered resources: {names}\n"
