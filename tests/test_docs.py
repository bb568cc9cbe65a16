"""The docs name only files that exist in the repository.

Checked: repository paths in backticks (`citylake/core/lake.py`, also inside a command), every
relative link target, and, in the registration template, paths in its comments. Placeholders
(`<dept>`, `*`, `…`) and runtime paths (`$CITYLAKE_HOME/…`, `var/…`) are skipped.
"""

import re
from pathlib import Path

import pytest

from citylake.core.settings import REPO_ROOT

DOCS = [
    REPO_ROOT / "README.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
    REPO_ROOT / "deploy" / "README.md",
    REPO_ROOT / "registrations" / "TEMPLATE.yaml.example",
]
PREFIXES = ("citylake", "docs", "registrations", "devtools", "dags", "deploy", "scripts", "tests", "config",
            "jobs", "expectations", "catalog")  # the last three: folders of the old layout
# A repository path: one of the prefixes, a slash, then path characters (not preceded by / or a letter,
# so /opt/citylake/dags and s3://… are not taken for repository paths).
PATH_RE = re.compile(rf"(?<![\w/.$~-])((?:{'|'.join(PREFIXES)})/[^\s`'\"()\[\]{{}},;|]*)")
BACKTICKS_RE = re.compile(r"`([^`\n]+)`")
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
PLACEHOLDER = ("<", ">", "*", "…", "...", "$", "{")
OUTSIDE_DOCS = ("DESIGN.md", "STANDARDS.md")  # design notes kept outside the repository


def _skip(path: str) -> bool:
    return any(p in path for p in PLACEHOLDER) or path.startswith("var/")


def _named_paths(doc: Path) -> list[tuple[int, str, Path]]:
    """(line number, text, resolved path) of every repository path the file names."""
    out = []
    for no, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        if doc.suffix == ".md":
            spans = BACKTICKS_RE.findall(line)
        else:  # the YAML template: its comments
            spans = [line.split("#", 1)[1]] if "#" in line else []
        for span in spans:
            for path in PATH_RE.findall(span):
                path = re.sub(r":\d+$", "", path).rstrip(".:")  # file.py:12 names file.py
                if not _skip(path):
                    out.append((no, path, REPO_ROOT / path))
        for target in LINK_RE.findall(line):
            target = target.split("#", 1)[0]
            if not target or "://" in target or target.startswith("mailto:") or _skip(target):
                continue
            out.append((no, target, (doc.parent / target).resolve()))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_named_files_exist(doc):
    assert doc.exists()
    missing = [f"{doc.relative_to(REPO_ROOT)}:{no}: {text}" for no, text, path in _named_paths(doc)
               if not path.exists()]
    assert not missing, "docs name files that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_reference_to_files_outside_the_repository(doc):
    text = doc.read_text(encoding="utf-8")
    found = [name for name in OUTSIDE_DOCS if name in text]
    assert not found, f"{doc.relative_to(REPO_ROOT)} names {found}, which are not in the repository"


def test_the_scan_finds_paths():
    """Guard against a scanner that silently finds nothing."""
    readme = [text for _, text, _ in _named_paths(REPO_ROOT / "README.md")]
    assert "citylake/drivers/sparkjob.py" in readme
    assert "docs/architecture.md" in readme
    template = [text for _, text, _ in _named_paths(REPO_ROOT / "registrations" / "TEMPLATE.yaml.example")]
    assert "docs/registrations.md" in template
