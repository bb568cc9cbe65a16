"""`citylake catalog publish|diff`, and publishing with the lake on S3 (SeaweedFS; skipped without
the `weed` binary): the exports are also written to the lake under ``directory/``."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

import pytest
from catalog_fixtures import NOW, build_small_lake

from citylake.core.lake import Lake
from citylake.drivers.cli import main
from citylake.stages.publish.publish import OUTPUT_FILES, publish


def _run(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("CITYLAKE_HOME", str(settings.home))
    monkeypatch.setenv("CITYLAKE_LAKE_URI", settings.lake_uri)
    monkeypatch.setenv("CITYLAKE_DIRECTORY_URL", settings.directory_url)
    monkeypatch.setenv("CITYLAKE_RESOURCES_DIR", str(settings.resources_dir))
    return settings


def test_cli_publish_prints_where_and_diff(env):
    code, out = _run(["catalog", "diff"])
    assert code == 0 and "no publication yet" in out
    code, out = _run(["catalog", "publish"])
    assert code == 0
    for rel in OUTPUT_FILES.values():
        path = env.directory_dir / rel
        assert path.exists() and str(path) in out
    assert "第 1 版" in out and "新增" in out
    code, out = _run(["catalog", "publish"])
    assert code == 0 and "第 2 版" in out and "0 项变更" in out
    code, out = _run(["catalog", "diff"])
    assert code == 0 and "0 change(s)" in out
    code, out = _run(["catalog", "diff", "--from", "0", "--to", "2"])
    assert code == 2
    code, out = _run(["catalog", "diff", "--json", "--pending"])
    assert code == 0 and out == ""
    code, out = _run(["catalog", "publish", "--json", "--base-url", "https://data.example.gov.cn/directory"])
    doc = json.loads(out)
    assert doc["version"] == 3 and doc["changes"] == []
    dcat = (env.directory_dir / "open-dcat.jsonld").read_text(encoding="utf-8")
    assert "https://data.example.gov.cn/directory/site/open/r/" in dcat


def test_publish_with_the_lake_on_s3_writes_exports_to_the_lake_too(s3_server, tmp_path):
    s3_server.empty_bucket()
    settings = s3_server.settings(tmp_path / "home")
    build_small_lake(settings)  # the same hand-made lake, now in the bucket
    result = publish(settings, now=NOW)
    lake = Lake.from_settings(settings)
    for name, rel in OUTPUT_FILES.items():
        assert (settings.directory_dir / rel).exists()
        assert lake.exists(f"directory/{rel}"), rel
        assert result.outputs[f"lake:{name}"].startswith("s3://") and result.outputs[f"lake:{name}"].endswith(rel)
    assert lake.read_bytes("directory/directory.json") == (settings.directory_dir / "directory.json").read_bytes()
    assert result.facts["enterprise_registration"].row_count == 4
    assert lake.exists("directory/site/r/enterprise_registration.html")
