"""What the stage tests share: a module of lineage builds written for one test."""

from __future__ import annotations

import pytest

from citylake.stages import lineage


@pytest.fixture
def declare_builds(tmp_path, monkeypatch):
    """``declare(module, body)``: writes ``module`` (``Build`` imported, ``body`` defining
    ``lineage_builds(settings, regs)``) and makes it the one entry of ``lineage.BUILD_SOURCES``, as a
    module that builds tables declares itself."""

    def declare(module: str, body: str) -> None:
        (tmp_path / f"{module}.py").write_text("from citylake.stages.lineage import Build\n" + body,
                                               encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(lineage, "BUILD_SOURCES", (f"{module}:lineage_builds",))

    return declare
