"""Each internal directory page shows where its data comes from and what is built from it
(来源与去向), drawn from citylake.stages.lineage; the open directory does not."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from catalog_fixtures import NOW

from citylake.core.registry import load_registrations
from citylake.stages.publish.publish import publish


class _Section(HTMLParser):
    """The text of <section id="lineage">, line by line (<li>, <p>), and its links."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.lines: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and a.get("id") == "lineage":
            self.depth = 1
        elif self.depth and tag == "section":
            self.depth += 1
        if self.depth and tag in ("li", "p"):
            self.lines.append("")
        if self.depth and tag == "a":
            self._href = a.get("href")

    def handle_endtag(self, tag):
        if self.depth and tag == "section":
            self.depth -= 1
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        if self.depth and self.lines:
            self.lines[-1] += data
            if self._href:
                self.links.append((self._href, data))


def _section(path) -> _Section:
    p = _Section()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_a_resource_page_shows_its_chain_and_what_is_built_from_it(settings, small_lake, declare_builds):
    declare_builds(
        "citylake_page_builds",
        "def lineage_builds(settings, regs):\n"
        "    return [Build('legal_entity_build', ('scjg.enterprise_registration', 'gjj.housing_fund_units'),\n"
        "                  ('base.legal_entity',), owner='legal_entity')]\n")
    publish(settings, now=NOW)
    site = settings.directory_dir / "site"

    page = _section(site / "r" / "enterprise_registration.html")
    text = [re.sub(r"\s+", " ", line).strip() for line in page.lines]
    steps = [line.split("：", 1)[0] for line in text if "：" in line]
    assert steps == ["ingest", "conform", "check", "curate", "legal_entity_build"], text
    assert "landing/scjg/enterprise_registration" in next(ln for ln in text if ln.startswith("ingest："))
    curate = next(line for line in text if line.startswith("curate："))
    assert "standardized.enterprise_registration" in curate.split("→")[0]
    assert "scjg.enterprise_registration" in curate.split("→")[1]
    assert any("base.legal_entity" in line for line in text if line.startswith("legal_entity_build"))

    # a resource nothing is built from says so
    other = _section(site / "r" / "resident_population.html")
    assert any("nothing is built from it yet" in line for line in other.lines)
    # a SQL source starts at its connection and table
    regs = {r.resource: r for r in load_registrations(settings.resources_dir)}
    sql = regs["social_insurance_enrollment"]
    first = [re.sub(r"\s+", " ", ln) for ln in _section(site / "r" / "social_insurance_enrollment.html").lines
             if ln.strip().startswith("extract")]
    assert first and f"{sql.source.conn_id} · {sql.source.table}" in first[0]

    # the open directory names no internal zone
    for page in (site / "open" / "r").glob("*.html"):
        assert 'id="lineage"' not in page.read_text(encoding="utf-8"), page.name


def test_a_source_of_another_entry_links_its_page(settings, small_lake, declare_builds):
    # A build owned by a listed resource reading another listed resource: the page links the source.
    declare_builds(
        "citylake_page_links",
        "def lineage_builds(settings, regs):\n"
        "    return [Build('enrich', ('scjg.enterprise_registration',), ('gjj.housing_fund_units',),\n"
        "                  owner='housing_fund_units')]\n")
    publish(settings, now=NOW)
    site = settings.directory_dir / "site"
    page = _section(site / "r" / "housing_fund_units.html")
    assert ("enterprise_registration.html", "scjg.enterprise_registration") in page.links
    upstream = _section(site / "r" / "enterprise_registration.html")
    assert ("housing_fund_units.html", "gjj.housing_fund_units") in upstream.links


def test_a_base_library_page_links_its_sources_and_they_link_it(settings, small_lake):
    # the registered base libraries, as published (no build made up for the test)
    publish(settings, now=NOW)
    site = settings.directory_dir / "site"
    base = _section(site / "r" / "legal_entity.html")
    assert {("enterprise_registration.html", "scjg.enterprise_registration"),
            ("housing_fund_units.html", "gjj.housing_fund_units")} <= set(base.links)
    assert any("base.legal_entity_conflicts" in line for line in base.lines)
    source = _section(site / "r" / "enterprise_registration.html")
    assert ("legal_entity.html", "base.legal_entity") in source.links
    assert ("population.html", "base.population") in _section(site / "r" / "resident_population.html").links
