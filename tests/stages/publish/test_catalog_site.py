"""The static HTML directory: self-contained pages, the open view, and search/filters in headless
Chromium (DevTools protocol, standard library only: chromium_cdp.py). Screenshots of the index and
one resource page go to ``test-artifacts/catalog/`` at the repository root; the Chinese on them
must render as real glyphs, not as the boxes of a machine without a CJK font."""

from __future__ import annotations

import json
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from catalog_fixtures import NOW
from chromium_cdp import Chromium, chromium_missing

from citylake.core.registry import load_registrations
from citylake.core.settings import REPO_ROOT
from citylake.stages.publish.publish import publish
from citylake_dev.testing import service_unavailable

ARTIFACTS = REPO_ROOT / "test-artifacts" / "catalog"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attr, value)

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src") and v is not None:
                self.refs.append((tag, k, v))
        if tag == "link":
            self.refs.append((tag, "link", dict(attrs).get("href") or ""))


@pytest.fixture
def site(settings, small_lake):
    result = publish(settings, now=NOW)
    return settings.directory_dir / "site", result


def _visible(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('li.card')].filter(c => !c.hidden)"
                         ".map(c => c.dataset.resource)")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def _expected(entries: list[dict], term: str, dept: str | None = None) -> set[str]:
    out = set()
    for e in entries:
        hay = " ".join([e["name"], e["summary"], e["code"], e["provider"]["name"], e["department"]["name"],
                        e["classification"]["business"] or "", *(i["item_name"] for i in e["items"])])
        if _norm(term) in _norm(hay) and (dept is None or e["department"]["slug"] == dept):
            out.add(e["resource"])
    return out


def test_pages_are_self_contained_and_links_resolve(site):
    root, result = site
    pages = sorted(root.rglob("*.html"))
    assert (root / "index.html") in pages and (root / "open" / "index.html") in pages
    assert len(list((root / "r").glob("*.html"))) == len(result.entries)
    for page in pages:
        html = page.read_text(encoding="utf-8")
        parser = _Links()
        parser.feed(html)
        for tag, attr, value in parser.refs:
            assert tag != "link", f"{page}: external stylesheet {value}"
            assert tag != "script", f"{page}: external script {value}"
            assert not re.match(r"^(https?:)?//", value), f"{page}: {tag} {attr}={value} is not local"
            if tag == "a":
                target = (page.parent / value.split("?")[0].split("#")[0]).resolve()
                assert target.exists(), f"{page}: broken link {value}"
        assert "@import" not in html and "url(http" not in html
        assert '<html lang="zh-CN">' in html and 'name="viewport"' in html


def test_open_pages_show_public_items_only(site, settings):
    root, _result = site
    regs = {r.resource: r for r in load_registrations(settings.resources_dir)}
    opened = sorted(p.stem for p in (root / "open" / "r").glob("*.html"))
    assert opened == sorted(r for r, reg in regs.items() if reg.open.is_open and reg.share.type != "不予共享")
    personal_titles = {f.title for reg in regs.values() for f in reg.fields
                       if f.sensitivity in ("personal", "restricted")}
    for page in (root / "open").rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for title in personal_titles:
            assert title not in html, f"{page}: {title}"
        assert "共享条件" not in html
    ent = (root / "open" / "r" / "enterprise_registration.html").read_text(encoding="utf-8")
    assert "张*" not in ent and "410105" in ent  # public columns of the samples only
    internal = (root / "r" / "enterprise_registration.html").read_text(encoding="utf-8")
    assert "法定代表人身份证号码" in internal and "410105********002X" in internal
    assert "41010519491231002X" not in internal and "欧阳明华" not in internal  # masked again


# Draws each Han character of an element's text to a canvas in the element's own font and compares
# pixels. A character no installed font covers is drawn as the primary font's .notdef box, the same
# box for every such character: so it equals the box drawn for U+10FFFF (a noncharacter no font
# maps), and distinct characters come out identical. Canvas and page text share Blink's font
# fallback, so this is what the page (and the screenshot) shows.
_GLYPH_CHECK = r"""(async (selectors) => {
  await document.fonts.ready;
  const c = document.createElement('canvas'); c.width = c.height = 48;
  const g = c.getContext('2d', {willReadFrequently: true});
  const draw = ch => {
    g.clearRect(0, 0, 48, 48); g.fillText(ch, 4, 4);
    const a = g.getImageData(0, 0, 48, 48).data; let px = '', ink = 0;
    for (let i = 3; i < a.length; i += 4) { px += String.fromCharCode(a[i]); if (a[i]) ink++; }
    return {px, ink};
  };
  return selectors.map(sel => {
    const el = document.querySelector(sel);
    if (!el) return {selector: sel, han: '', boxes: '', distinct: 0, latin_ok: false};
    const text = el.placeholder || (el.selectedOptions ? el.selectedOptions[0].text : el.textContent);
    const han = [...new Set(text.match(/\p{Script=Han}/gu) || [])].slice(0, 8);
    const cs = getComputedStyle(el);
    g.font = `${cs.fontStyle} ${cs.fontWeight} 32px ${cs.fontFamily}`;
    g.textBaseline = 'top'; g.fillStyle = '#000';
    const tofu = draw('\u{10FFFF}');
    const glyphs = han.map(draw);
    const a = draw('A'), b = draw('B');  // control: the canvas draws distinct Latin glyphs
    return {selector: sel, font: g.font, han: han.join(''),
            boxes: han.filter((ch, i) => !glyphs[i].ink || glyphs[i].px === tofu.px).join(''),
            distinct: new Set(glyphs.map(x => x.px)).size, latin_ok: a.ink > 0 && a.px !== b.px};
  });
})"""

INDEX_TEXT = ["header.top h1", "li.card h2", "li.card .summary", "#q", "#dept", "#reset"]
RESOURCE_TEXT = ["h1", "h2.section", "dl.kv dt", "th"]


def glyph_report(page, selectors: list[str]) -> list[dict]:
    reports = page.evaluate(f"{_GLYPH_CHECK}({json.dumps(selectors)})")
    for r in reports:
        assert r["han"], f"{r['selector']}: no Chinese text to check"
        assert r["latin_ok"], f"{r['selector']}: the canvas check draws nothing ({r['font']})"
    return reports


def assert_chinese_renders(page, selectors: list[str]) -> None:
    for r in glyph_report(page, selectors):
        boxed = r["boxes"] or r["distinct"] < len(r["han"])
        assert not boxed, (
            f"{r['selector']}: Chinese renders as boxes ({r['boxes'] or r['han']!r} in {r['font']}, "
            f"system fonts used: {page.platform_fonts(r['selector'])}); "
            "no CJK font installed? scripts/system-deps.sh installs fonts-wqy-microhei")


def _latin_only_fontconfig(tmp_path: Path) -> dict[str, str]:
    """FONTCONFIG_FILE for a machine without CJK fonts: the system's font rules (conf.d) but only
    the DejaVu fonts (Debian's default Latin fonts) instead of every font directory."""
    dejavu = Path("/usr/share/fonts/truetype/dejavu")
    if not dejavu.is_dir():
        pytest.skip(f"{dejavu} missing: no Latin-only font set to hide CJK fonts behind")
    conf = tmp_path / "fonts-latin-only.conf"
    conf.write_text('<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>'
                    f"<dir>{dejavu}</dir><cachedir>{tmp_path / 'fc-cache'}</cachedir>"
                    '<include ignore_missing="yes">/etc/fonts/conf.d</include></fontconfig>\n')
    return {"FONTCONFIG_FILE": str(conf)}


def test_search_box_shows_only_matching_resources(site, browser):
    root, result = site
    page = browser.page()
    page.goto((root / "index.html").as_uri())
    assert sorted(_visible(page)) == sorted(e["resource"] for e in result.entries)
    for term in ("空气质量", "公民身份号码", "统一社会信用代码", "不动产"):
        page.evaluate("document.getElementById('q').value = ''")
        page.type_text("#q", term)
        expected = _expected(result.entries, term)
        assert expected, term
        assert set(_visible(page)) == expected, term
        assert page.evaluate("document.getElementById('count').textContent") == str(len(expected))
    page.evaluate("document.getElementById('q').value = ''")
    page.type_text("#q", "没有这样的资源")
    assert _visible(page) == []
    assert page.evaluate("document.getElementById('empty').hidden") is False
    # the query is kept in the address, so a search can be shared
    assert "q=" in page.evaluate("location.search")


def test_filter_by_department_and_query_string(site, browser):
    root, result = site
    page = browser.page()
    page.goto((root / "index.html").as_uri())
    page.select("#dept", "sthj")
    assert _visible(page) == ["air_quality_hourly"]
    page.select("#dept", "scjg")
    assert _visible(page) == ["enterprise_registration"]
    page.select("#dept", "")
    page.select("#fresh", "overdue")
    assert _visible(page) == ["air_quality_hourly"]
    page.select("#fresh", "")
    page.select("#cls", "1")
    assert set(_visible(page)) == {e["resource"] for e in result.entries if e["classification"]["category"] == "1"}
    # initial state from the address: search + department
    page.goto((root / "index.html").as_uri() + "?q=%E4%BF%A1%E7%94%A8&dept=gjj")  # q=信用
    assert page.evaluate("document.getElementById('q').value") == "信用"
    assert page.evaluate("document.getElementById('dept').value") == "gjj"
    assert set(_visible(page)) == _expected(result.entries, "信用", dept="gjj") == {"housing_fund_units"}


def test_screenshots_of_index_and_resource_page(site, browser):
    root, _result = site
    page = browser.page()
    page.goto((root / "index.html").as_uri())
    shots = [page.screenshot(ARTIFACTS / "index.png", width=1280),
             page.screenshot(ARTIFACTS / "index-phone.png", width=390, mobile=True)]
    assert_chinese_renders(page, INDEX_TEXT)  # after the shots, so a failure leaves the boxes to see
    page.goto((root / "r" / "enterprise_registration.html").as_uri())
    assert page.evaluate("document.querySelectorAll('svg.chart circle').length") == 3
    assert page.evaluate("document.title").startswith("企业登记信息")
    shots.append(page.screenshot(ARTIFACTS / "resource-enterprise_registration.png", width=1280))
    shots.append(page.screenshot(ARTIFACTS / "resource-enterprise_registration-phone.png", width=390, mobile=True))
    assert_chinese_renders(page, RESOURCE_TEXT)
    for shot in shots:
        data = Path(shot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # phone width: no horizontal scrolling of the page itself (wide tables scroll in their box)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_glyph_check_reports_boxes_without_cjk_fonts(site, tmp_path):
    """The check above must catch a machine without CJK fonts: the same page in Chromium that sees
    only DejaVu (fontconfig hides the installed fonts) renders every Chinese character as a box."""
    root, _result = site
    reason = chromium_missing()
    if reason:
        service_unavailable(reason)
    with Chromium(tmp_path / "chromium-profile", env=_latin_only_fontconfig(tmp_path)) as b:
        page = b.page()
        page.goto((root / "index.html").as_uri())
        for r in glyph_report(page, INDEX_TEXT):
            assert r["boxes"] == r["han"] and r["distinct"] == 1, r
        with pytest.raises(AssertionError, match="renders as boxes"):
            assert_chinese_renders(page, INDEX_TEXT)


def test_quality_page_shows_history_and_why_a_batch_was_blocked(site):
    root, result = site
    page = root / "q" / "housing_fund_units.html"
    html = page.read_text(encoding="utf-8")
    assert 'id="b-h001"' in html and "阻断" in html, "the blocked batch is listed as blocked"
    assert 'id="blocked-h001"' in html and "隔离率不超过 50%" in html, "and says which blocking rule failed"
    assert "隔离 30 行 / 共 40 行（75.0%，上限 50.0%）" in html
    assert "统一社会信用代码" in html, "the quarantine reason is named by its field's title"
    assert 'href="../q/housing_fund_units.html"' in (root / "r" / "housing_fund_units.html").read_text(encoding="utf-8")
    assert not (root / "open" / "q").exists(), "quality pages belong to the internal directory only"
    passing = (root / "q" / "air_quality_hourly.html").read_text(encoding="utf-8")
    assert "阻断</span>" not in passing and "通过" in passing
    assert {p.stem for p in (root / "q").glob("*.html")} <= {e["resource"] for e in result.entries}
