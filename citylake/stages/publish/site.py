"""The static, self-contained HTML directory: ``site/index.html``, ``site/r/<resource>.html`` and
the quality pages ``site/q/<resource>.html`` (:mod:`citylake.stages.publish.quality`).

No server and no external assets: CSS and the search script are inlined, the quality chart is an
inline SVG, links are relative, so the folder works from ``file://`` and from any static host.
The index searches (Chinese substring match, every term must match) over name, summary, code,
provider, business and information-item titles, and filters by department, classification,
share type, update cycle and freshness; ``?q=…&dept=…&cls=…&share=…&cycle=…&fresh=…`` sets the
initial state. This is the *internal* directory (it lists every resource); sample rows are masked
again here by the registration's mask kind, and 不予共享 resources show no data at all. The drop
templates of file-drop resources sit in ``templates/`` and only the internal pages link them (the
liaisons who fill them in are internal users); the open directory has neither.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader

from citylake.core.reasons import REASONS, split_reason
from citylake.core.registry import SHARE_TYPES, UPDATE_CYCLES
from citylake.stages.publish.classification import category_name, item_name, levels
from citylake.stages.publish.entries import NOT_SHARED, is_open
from citylake.stages.publish.exports import redact_titles
from citylake.stages.publish.facts import FRESHNESS_ALLOWANCE, FRESHNESS_LABELS, RECENT

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHINA = ZoneInfo("Asia/Shanghai")
SENSITIVITY = {"public": "公开", "internal": "内部", "personal": "个人信息", "restricted": "受限"}


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=False)
    env.filters.update(local_time=local_time, percent=percent)
    return env


def local_time(value) -> str:
    if value in (None, ""):
        return "—"
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _rows_text(f: dict) -> str:
    return "暂无数据" if not f.get("has_data") else f"{f.get('row_count') or 0:,} 行"


def freshness_rule(cycle: str) -> str:
    allowance = FRESHNESS_ALLOWANCE[cycle]
    if allowance is None:
        return "不定期更新，不判定逾期"
    hours = allowance.total_seconds() / 3600
    span = f"{hours:.0f} 小时" if hours < 48 else f"{hours / 24:.0f} 天"
    return f"更新周期“{cycle}”：最新数据超过 {span} 未更新即为逾期"


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def quality_chart(trend: list[dict]) -> str:
    """A small inline SVG line chart of pass rates (0–100 %), oldest to newest."""
    pts = [p for p in trend if p.get("pass_rate") is not None]
    if not pts:
        return '<p class="note">暂无质量检查结果。</p>'
    w, h, left, right, top, bottom = 600, 180, 44, 12, 12, 28
    pw, ph = w - left - right, h - top - bottom
    n = len(pts)

    def x(i):
        return left + (pw / 2 if n == 1 else pw * i / (n - 1))

    def y(rate):
        return top + ph * (1 - max(0.0, min(1.0, rate)))

    parts = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="质量通过率趋势，最近 {n} 个批次" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in (0, 0.5, 1):
        yy = y(tick)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{w - right}" y2="{yy:.1f}" stroke="#dfe5ec"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6b7c">'
                     f"{int(tick * 100)}%</text>")
    line = " ".join(f"{x(i):.1f},{y(p['pass_rate']):.1f}" for i, p in enumerate(pts))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#2d6aa3" stroke-width="2"/>')
    for i, p in enumerate(pts):
        color = "#b3261e" if p.get("success") is False else "#2d6aa3"
        label = f"{local_time(p.get('checked_at'))} 批次 {p.get('batch_id', '')}：{percent(p['pass_rate'])}"
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(p["pass_rate"]):.1f}" r="3.5" fill="{color}">'
                     f"<title>{_esc(label)}</title></circle>")
    first, last = local_time(pts[0].get("checked_at"))[:10], local_time(pts[-1].get("checked_at"))[:10]
    parts.append(f'<text x="{left}" y="{h - 8}" font-size="11" fill="#5b6b7c">{_esc(first)}</text>')
    if n > 1:
        parts.append(f'<text x="{w - right}" y="{h - 8}" font-size="11" text-anchor="end" fill="#5b6b7c">'
                     f"{_esc(last)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def reason_label(text: str, titles: dict[str, str]) -> str:
    """'uscc_check:uscc' -> '统一社会信用代码校验位错误（统一社会信用代码）'."""
    code, field = split_reason(text)
    label = REASONS.get(code, (code, code))[0]
    return f"{label}（{titles.get(field, field)}）" if field else label


def _item_note(item: dict) -> str:
    bits = []
    if item.get("unit"):
        bits.append(f"单位：{item['unit']}")
    if item.get("description"):
        bits.append(item["description"])
    return "；".join(bits)


def _decorate(e: dict, f: dict) -> dict:
    c = e["classification"]
    d = dict(e)
    d["facts"] = f
    d["is_open"] = is_open(e)
    d["class_label"] = f"{c['category_name'] or c['category']} / {c['item_name'] or c['item']}"
    d["rows_text"] = _rows_text(f)
    d["updated_text"] = local_time(f.get("last_updated_at")) if f.get("has_data") else "—"
    d["quality_text"] = percent(f.get("quality_latest_pass_rate"))
    d["items"] = [dict(i, note=_item_note(i)) for i in e["items"]]
    haystack = [e["name"], e["summary"], e["code"], e["provider"]["name"], e["department"]["name"],
                c["business"] or "", *(i["item_name"] for i in e["items"])]
    d["search_text"] = _norm(" ".join(haystack))
    return d


def public_view(entry: dict, facts: dict, sample: tuple[list, list]) -> tuple[dict, dict, tuple[list, list]]:
    """What the open directory may show of an open entry: public information items only, the
    summary without the titles of the other items, no share conditions, no drift or quarantine
    details (they name fields), samples of public fields only."""
    public = [i for i in entry["items"] if i["sensitivity"] == "public"]
    hidden = [i["item_name"] for i in entry["items"] if i["sensitivity"] != "public"]
    e = dict(entry, items=public, summary=redact_titles(entry["summary"], hidden),
             share={"type": "", "condition": None, "method_category": None, "method_type": None})
    names = {i["field"] for i in public}
    f = dict(facts, drift=[], quarantine_reasons={},
             columns_present=[c for c in (facts.get("columns_present") or []) if c["name"] in names] or None)
    fields, rows = sample
    keep = [k for k, spec in enumerate(fields) if spec.name in names and spec.sensitivity == "public"]
    return e, f, ([fields[k] for k in keep], [[r[k] for k in keep] for r in rows])


def render_site(entries: list[dict], facts: dict[str, dict], samples: dict[str, tuple[list, list]],
                publication: dict, templates: dict[str, dict[str, bytes]] | None = None,
                quality: dict[str, dict] | None = None, lineage: dict[str, dict] | None = None) -> dict[str, bytes]:
    """Return relative path -> bytes for every page: the internal directory (``index.html``,
    ``r/<resource>.html``, and ``q/<resource>.html``, the quality page of each resource in
    ``quality``, from :func:`citylake.stages.publish.quality.quality_history`) and the open
    directory (``open/index.html``, ``open/r/<resource>.html``) of the open resources only, with
    public information items only. ``templates`` (resource -> {file name: bytes}) go to
    ``templates/<file name>``, linked from the internal resource pages. ``lineage`` (entry -> its
    :func:`citylake.stages.lineage.page_lineage` view) is each internal page's "来源与去向"; the open
    directory does not show it (it names the lake's internal zones)."""
    no_facts = {"freshness": "no_data", "freshness_label": FRESHNESS_LABELS["no_data"]}
    listed = {e["resource"] for e in entries}
    templates = {r: t for r, t in (templates or {}).items() if r in listed}
    quality = {r: q for r, q in (quality or {}).items() if r in listed}
    out = _render(entries, {e["resource"]: facts.get(e["resource"], no_facts) for e in entries}, samples,
                  publication, public=False, templates=templates, quality=quality, lineage=lineage)
    for files in templates.values():
        for name, data in files.items():
            out[f"templates/{name}"] = data
    open_entries, open_facts, open_samples = [], {}, {}
    for e in entries:
        if not is_open(e):
            continue
        pe, pf, ps = public_view(e, facts.get(e["resource"], no_facts), samples.get(e["resource"], ([], [])))
        open_entries.append(pe)
        open_facts[e["resource"]] = pf
        open_samples[e["resource"]] = ps
    for rel, data in _render(open_entries, open_facts, open_samples, publication, public=True).items():
        out[f"open/{rel}"] = data
    return out


def _render(entries: list[dict], facts: dict[str, dict], samples: dict[str, tuple[list, list]],
            publication: dict, public: bool, templates: dict[str, dict[str, bytes]] | None = None,
            quality: dict[str, dict] | None = None, lineage: dict[str, dict] | None = None) -> dict[str, bytes]:
    env = _env()
    css = (TEMPLATES / "style.css").read_text(encoding="utf-8")
    js = (TEMPLATES / "search.js").read_text(encoding="utf-8")
    site_title = "政务数据资源开放目录" if public else "政务数据资源目录"
    pub = dict(publication, published_local=local_time(publication["published_at"]))
    ordered = sorted(entries, key=lambda e: e["code"])
    decorated = [_decorate(e, facts[e["resource"]]) for e in ordered]
    departments = sorted({(e["department"]["slug"], e["provider"]["name"]) for e in ordered}, key=lambda x: x[1])
    classes: list[tuple[str, str, int]] = []
    seen = set()
    for e in ordered:
        c = e["classification"]
        for depth, (key, label) in enumerate(
            [
                (c["category"], f"{c['category']} {category_name(c['category']) or ''}".strip()),
                (
                    c["category"] + c["item"],
                    f"{c['category']}{c['item']} {item_name(c['category'], c['item']) or ''}".strip(),
                ),
            ]
        ):
            if key not in seen:
                seen.add(key)
                classes.append((key, label, depth))
    classes.sort(key=lambda x: x[0])
    out: dict[str, bytes] = {}
    index = env.get_template("index.html.j2").render(
        css=css,
        js=js,
        pub=pub,
        entries=decorated,
        departments=departments,
        classes=classes,
        share_types=SHARE_TYPES,
        cycles=UPDATE_CYCLES,
        freshness=list(FRESHNESS_LABELS.items()),
        open_count=sum(1 for e in decorated if e["is_open"]),
        fields_count=sum(len(e["items"]) for e in decorated),
        public=public,
        site_title=site_title,
    )
    out["index.html"] = index.encode("utf-8")
    by_code = {e["code"]: e for e in ordered}
    page = env.get_template("resource.html.j2")
    for d in decorated:
        f = d["facts"]
        c = d["classification"]
        fields, rows = samples.get(d["resource"], ([], []))
        if d["share"]["type"] == NOT_SHARED:
            fields, rows = [], []
        related = [
            {"code": code, "href": f"{by_code[code]['resource']}.html" if code in by_code else None}
            for code in d["related_codes"]
        ]
        titles = {i["field"]: i["item_name"] for i in d["items"]}
        reasons = [(reason_label(r, titles), n) for r, n in list((f.get("quarantine_reasons") or {}).items())[:5]]
        q_rate = f.get("quarantine_rate")
        html = page.render(
            css=css,
            pub=pub,
            e=d,
            f=f,
            levels=levels(c["category"], c["item"], c["catalog"], c["detail"]),
            related=related,
            sensitivity=SENSITIVITY,
            chart=quality_chart(f.get("quality_trend") or []),
            recent=RECENT,
            recent_text=percent(f.get("quality_recent_pass_rate")),
            quarantine_text="—"
            if q_rate is None
            else f"{percent(q_rate)}（隔离 {f.get('quarantined_rows', 0):,} 行 / 共 "
            f"{(f.get('quarantined_rows') or 0) + (f.get('standardized_rows') or 0):,} 行）",
            received_text=local_time(f.get("last_received_at")),
            freshness_rule=freshness_rule(d["update_cycle"]),
            top_reasons=reasons,
            present=[col["name"] for col in (f.get("columns_present") or [])],
            sample_fields=fields,
            sample_rows=rows,
            public=public,
            site_title=site_title,
            index_href="../index.html",
            quality_href=None if public or d["resource"] not in (quality or {}) else f"../q/{d['resource']}.html",
            lineage=_linked(lineage.get(d["resource"]), {e["resource"] for e in ordered}) if lineage else None,
            drop_templates=[] if public else [
                {"label": name.rsplit(".", 1)[-1].upper(), "href": f"../templates/{name}"}
                for name in (templates or {}).get(d["resource"], {})
            ],
        )
        out[f"r/{d['resource']}.html"] = html.encode("utf-8")
        if not public and d["resource"] in (quality or {}):
            out[f"q/{d['resource']}.html"] = _quality_page(env, css, pub, d, quality[d["resource"]], titles,
                                                          site_title)
    return out


def _linked(view: dict | None, listed: set[str]) -> dict | None:
    """A lineage view whose datasets of other listed entries link their pages."""
    if not view:
        return None

    def link(d: dict) -> dict:
        return dict(d, href=f"{d['owner']}.html" if d["other"] and d["owner"] in listed else None)

    return {part: [dict(j, inputs=[link(d) for d in j["inputs"]], outputs=[link(d) for d in j["outputs"]])
                   for j in jobs] for part, jobs in view.items()}


def _quality_page(env: Environment, css: str, pub: dict, e: dict, history: dict, titles: dict[str, str],
                  site_title: str) -> bytes:
    """A resource's quality page (quality.html.j2); quarantine reasons read by their field titles."""
    batches = [dict(b, reasons=[dict(r, label=reason_label(r["reason"], titles)) for r in b["reasons"]])
               for b in history["batches"]]
    return env.get_template("quality.html.j2").render(
        css=css, pub=pub, e=e, q=dict(history, batches=batches), site_title=site_title).encode("utf-8")
