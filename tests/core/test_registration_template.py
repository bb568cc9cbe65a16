"""registrations/TEMPLATE.yaml.example: valid as copied, never loaded in place, and complete."""

import re
import shutil

import yaml

from citylake.core.registry import Registration, load_registrations
from citylake.core.settings import REPO_ROOT

TEMPLATE = REPO_ROOT / "registrations" / "TEMPLATE.yaml.example"
DOC = REPO_ROOT / "docs" / "registrations.md"


def _documented_top_level_keys() -> set[str]:
    """First-column keys of the table under '## Top-level keys' in docs/registrations.md."""
    section = DOC.read_text(encoding="utf-8").split("## Top-level keys", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))


def test_template_loads_when_copied(tmp_path):
    raw = yaml.safe_load(TEMPLATE.read_text(encoding="utf-8"))
    target = tmp_path / raw["department"] / f"{raw['resource']}.yaml"
    target.parent.mkdir()
    shutil.copy(TEMPLATE, target)
    regs = load_registrations(tmp_path)
    assert [r.resource for r in regs] == [raw["resource"]]


def test_loaders_do_not_load_the_template():
    assert not TEMPLATE.name.endswith(".yaml")
    assert TEMPLATE not in set((REPO_ROOT / "registrations").glob("*/*.yaml"))


def test_every_documented_top_level_key_is_in_the_template():
    documented = _documented_top_level_keys()
    assert documented == set(Registration.model_fields), "docs/registrations.md top-level table vs registry.py"
    text = TEMPLATE.read_text(encoding="utf-8")
    missing = [k for k in sorted(documented) if not re.search(rf"^(# ?)?{k}:", text, flags=re.M)]
    assert not missing, f"not in {TEMPLATE.name}, even commented: {missing}"
