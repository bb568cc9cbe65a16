"""The directory pages of the data service: the open portal for everyone, the internal directory
behind a department login.

* ``GET /`` — the open portal: the open resources, their public fields, links to their downloads
  and rows (``/api/v1/open/…``), to the published open directory pages (``/open/…``) and to ``/docs``;
* ``GET /login``, ``POST /login`` — a department key in, a signed session cookie out (HttpOnly,
  SameSite=Lax, Secure over https); ``POST /logout``;
* ``GET /directory/<path>`` — the internal directory the catalogue job publishes
  (``$CITYLAKE_HOME/directory/site``), to a signed-in session only, every other request is sent to
  ``/login``. The service adds a bar (who is signed in, the requests page, log out) to every page
  and, on the page of a 有条件共享 resource of another department, the 申请共享 form;
* ``POST /apply/<resource>`` — that form: :func:`citylake.stages.share.create_request`;
* ``GET /me`` — the department's requests, as consumer and as provider (approve / reject forms,
  ``POST /me/requests/<id>/approve|reject``: :func:`citylake.stages.share.decide`), and its own
  resources with their quality pages, where its quarantined rows are described (link only).

The cookie holds the key's database id, a random session id and an expiry, signed with HMAC-SHA256
under :meth:`citylake.core.settings.Settings.session_signing_secret`. Every request looks the key up
again, so revoking it (``citylake keys revoke``) ends its sessions; logging out ends the session in
this process. Forms carry a CSRF token derived from the session id (the login form: from a
pre-login cookie).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import DictLoader, Environment
from sqlalchemy import or_, select

from citylake.core.registry import Registration
from citylake.stages import share
from citylake.stages.publish.models import ApiKey, ShareRequest
from citylake.stages.publish.site import TEMPLATES as PUBLISH_TEMPLATES
from citylake.stages.query import column_titles

router = APIRouter(include_in_schema=False)

SESSION_COOKIE = "citylake_session"
LOGIN_COOKIE = "citylake_login"
SESSION_SECONDS = 8 * 3600
MAX_FORM_BYTES = 64 * 1024
SITE_FOLDER = "site"  # under Settings.directory_dir: what the catalogue job publishes
OPEN_FOLDER = "open"  # under it: the open directory, public by construction
NEXT_RE = re.compile(r"^/(directory/[A-Za-z0-9_./-]*|me)$")
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin"}
STATUS_WORDS = {"pending": "待审核", "approved": "已同意", "rejected": "已拒绝"}


# ---- signing ----------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, data: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}\x00{data}".encode(), hashlib.sha256).digest())


def sign(secret: bytes, payload: dict) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, 'session', body)}"


def unsign(secret: bytes, token: str | None) -> dict | None:
    """The payload of a cookie :func:`sign` made, or None (missing, forged, malformed or expired)."""
    body, _, mac = (token or "").partition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret, "session", body)):
        return None
    try:
        payload = json.loads(_unb64(body))
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():
        return None
    return payload


def _secret(request: Request) -> bytes:
    app_state = request.app.state
    if getattr(app_state, "session_secret", None) is None:
        try:
            app_state.session_secret = app_state.citylake.settings.session_signing_secret()
        except ValueError as exc:  # a shared lake and no CITYLAKE_SESSION_SECRET: no logins, the rest works
            raise share.ShareError(str(exc), status=503) from None
    return app_state.session_secret


class _LoggedOut:
    """Session ids logged out in this process, until their cookie would have expired anyway."""

    def __init__(self):
        self.ids: dict[str, float] = {}
        self.lock = threading.Lock()

    def add(self, sid: str, until: float) -> None:
        with self.lock:
            now = time.time()
            self.ids = {k: v for k, v in self.ids.items() if v > now}
            self.ids[sid] = until

    def __contains__(self, sid: str) -> bool:
        return sid in self.ids


def _logged_out(request: Request) -> _LoggedOut:
    app_state = request.app.state
    if getattr(app_state, "logged_out", None) is None:
        app_state.logged_out = _LoggedOut()
    return app_state.logged_out


# ---- the signed-in session -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Login:
    caller: share.Caller
    key_id: int
    sid: str
    exp: int
    csrf: str


def current_login(request: Request) -> Login | None:
    """The session the request's cookie names, if it is signed, unexpired, not logged out and its key
    is not revoked."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    secret = _secret(request)
    payload = unsign(secret, request.cookies.get(SESSION_COOKIE))
    if payload is None or not isinstance(payload.get("sid"), str) or payload["sid"] in _logged_out(request):
        return None
    state = request.app.state.citylake
    with state.session() as s:
        key = s.get(ApiKey, payload.get("key"))
        if key is None or key.revoked_at is not None:
            return None
        caller = share.Caller(key.holder, key.is_admin)
    return Login(caller, key.id, payload["sid"], payload["exp"], _mac(secret, "csrf", payload["sid"]))


def _check_csrf(expected: str, form: dict[str, list[str]]) -> bool:
    given = (form.get("csrf") or [""])[0]
    return bool(given) and hmac.compare_digest(given, expected)


async def form_data(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (the pages' forms are plain HTML forms)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise share.ShareError("form too large", status=413)
    return parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)


Form = Annotated[dict[str, list[str]], Depends(form_data)]


def _one(form: dict[str, list[str]], name: str) -> str:
    return (form.get(name) or [""])[0].strip()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


def _to_login(request: Request, target: str | None = None) -> Response:
    """No session: a browser (it asks for HTML) is sent to the login page, and to ``target`` (default:
    the page it asked for) after it; any other client gets 401 with a JSON error. Neither sees
    anything of the page."""
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse({"error": "sign in at /login with a department key to see the internal directory"},
                            status_code=401, headers=PAGE_HEADERS)
    target = request.url.path if target is None else target
    return RedirectResponse(f"/login?next={quote(target)}" if NEXT_RE.match(target) else "/login",
                            status_code=303, headers=PAGE_HEADERS)


# ---- pages --------------------------------------------------------------------------------------------
_BASE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} · 政务数据共享服务</title><style>{{ css | safe }}{{ extra_css | safe }}</style></head>
<body>{% if login %}{{ bar | safe }}{% endif %}
<header class="top"><div class="wrap"><h1>{{ title }}</h1>{% if subtitle %}<p>{{ subtitle }}</p>{% endif %}</div></header>
<main class="wrap">{% block main %}{% endblock %}</main>
<footer class="wrap note">由 citylake 数据共享服务提供 · <a href="/">开放门户</a> · <a href="/docs">接口文档</a>{% if not login %} · <a href="/login">部门登录</a>{% endif %}</footer>
</body></html>"""  # noqa: E501

_EXTRA_CSS = """
nav.svc { background: #16395a; color: #dfeaf5; font-size: 13px; }
nav.svc .wrap { display: flex; flex-wrap: wrap; gap: 6px 16px; align-items: center; padding: 6px 20px; }
nav.svc a, nav.svc button { color: #fff; }
nav.svc form { display: inline; margin: 0; }
nav.svc button { font: inherit; border: 0; background: none; cursor: pointer; padding: 0; text-decoration: underline; }
form.apply label { display: inline-block; margin: 2px 14px 2px 0; }
form.apply label[for=purpose] { display: block; }
form.apply textarea, form.login input[type=password] { width: 100%; font: inherit; padding: 8px; border: 1px solid #c5d0db; border-radius: 8px; }
button.primary { font: inherit; background: var(--brand-2); color: #fff; border: 0; border-radius: 8px; padding: 7px 18px; cursor: pointer; }
p.error { color: var(--bad); }
td form { display: inline-block; margin: 0 6px 4px 0; }
td input[type=text] { font: inherit; font-size: 13px; padding: 3px 6px; width: 10em; }
"""  # noqa: E501

_BAR = """<nav class="svc" id="svc-bar"><div class="wrap">
<span>已登录：<b id="svc-holder">{{ holder }}</b>{% if is_admin %}（管理员）{% endif %}</span>
<a href="/directory/index.html">政务数据资源目录</a><a href="/me">共享申请</a><a href="/">开放门户</a>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{{ csrf }}"><button type="submit" id="logout">退出登录</button></form>
</div></nav>"""  # noqa: E501

_APPLY = """<section class="panel" id="apply">
<h2 class="section">申请共享</h2>
<p>{{ reg.share.type }}：{{ reg.share.condition or "—" }}</p>
<p class="note" id="apply-state">{{ state_text }}</p>
<form class="apply" method="post" action="/apply/{{ reg.resource }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<p>申请的信息项：<br>{% for f in fields %}<label><input type="checkbox" name="fields" value="{{ f.name }}" checked> {{ f.title }}{% if f.sensitivity == "personal" %}（个人信息，默认脱敏）{% endif %}</label>{% endfor %}</p>
{% if personal %}<p>申请明文（须提供方同意）：<br>{% for f in personal %}<label><input type="checkbox" name="unmasked" value="{{ f.name }}"> {{ f.title }}</label>{% endfor %}</p>{% endif %}
<p><label for="purpose">用途</label><textarea id="purpose" name="purpose" rows="2" required placeholder="说明数据用于哪项职能或业务"></textarea></p>
<p><button class="primary" type="submit" id="apply-submit">申请共享</button></p>
</form>
</section>"""  # noqa: E501

_OWN = """<section class="panel" id="own-resource"><h2 class="section">本部门资源</h2>
<p>这是本部门提供的资源。<a href="/me">收到的共享申请</a>{% if quality %} · <a href="/directory/q/{{ reg.resource }}.html">质量报告与隔离数据</a>{% endif %}</p></section>"""  # noqa: E501

_PORTAL = """{% extends "base" %}{% block main %}
<section class="panel"><p>向社会开放的政务数据：每个资源仅开放其公开信息项。下载与接口无需登录；接口说明见 <a href="/docs">/docs</a>（OpenAPI：<a href="/openapi.json">/openapi.json</a>）。各部门登录后可查阅完整的政务数据资源目录并申请共享：<a href="/login">部门登录</a>。</p></section>
<ul class="cards" id="open-resources">
{% for r in resources %}<li class="card" data-resource="{{ r.resource }}">
<h2>{% if r.page %}<a href="{{ r.page }}">{{ r.name }}</a>{% else %}{{ r.name }}{% endif %}</h2>
<div class="meta"><span>{{ r.provider }}</span><span>更新周期：{{ r.update_cycle }}</span>{% if r.condition %}<span>开放条件：{{ r.condition }}</span>{% endif %}</div>
<p class="note">开放信息项：{% for f in r.fields %}{{ f.title }}（<span class="code">{{ f.name }}</span>）{% if not loop.last %}、{% endif %}{% else %}—{% endfor %}</p>
<p>下载：<a href="/api/v1/open/{{ r.resource }}/download?format=csv">CSV</a> · <a href="/api/v1/open/{{ r.resource }}/download?format=xlsx">XLSX</a> · <a href="/api/v1/open/{{ r.resource }}/download?format=json">JSON</a> · 接口：<a class="code" href="/api/v1/open/{{ r.resource }}/rows">/api/v1/open/{{ r.resource }}/rows</a></p>
</li>{% else %}<li class="card empty">暂无开放数据。</li>{% endfor %}
</ul>{% endblock %}"""  # noqa: E501

_LOGIN = """{% extends "base" %}{% block main %}
<section class="panel"><form class="login" method="post" action="/login">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="next" value="{{ next }}">
{% if error %}<p class="error" id="login-error">{{ error }}</p>{% endif %}
<p><label for="key">部门密钥</label><input type="password" id="key" name="key" autocomplete="off" required placeholder="clk_…"></p>
<p class="note">密钥由市大数据管理局签发（citylake keys issue）。登录后可查阅完整目录、申请共享、处理本部门收到的申请。</p>
<p><button class="primary" type="submit" id="login-submit">登录</button></p>
</form></section>{% endblock %}"""

_ME = """{% extends "base" %}{% block main %}
{% if made %}<p class="panel" id="made">已提交申请 {{ made }}，等待提供方审核。</p>{% endif %}
<section class="panel" id="as-provider"><h2 class="section">收到的申请（本部门为提供方）</h2>
{{ table(provided, True) }}</section>
<section class="panel" id="as-consumer"><h2 class="section">本部门提出的申请</h2>
{{ table(asked, False) }}</section>
{% if own %}<section class="panel" id="own"><h2 class="section">本部门资源</h2><ul>
{% for r in own %}<li><a href="/directory/r/{{ r.resource }}.html">{{ r.name }}</a> · <a href="/directory/q/{{ r.resource }}.html">质量报告与隔离数据</a>{% if quarantine_api %}
 · 被隔离的行（以部门密钥调用接口）：<span class="code">GET /api/v1/quarantine/{{ r.resource }}.xlsx</span>{% endif %}</li>{% endfor %}
</ul></section>{% endif %}
{% endblock %}
{% macro table(rows, deciding) %}{% if rows %}<div class="tablewrap"><table>
<thead><tr><th>编号</th><th>资源</th><th>{{ "申请部门" if deciding else "提供部门" }}</th><th>信息项</th><th>用途</th><th>状态</th><th>提交时间</th>{% if deciding %}<th>处理</th>{% endif %}</tr></thead><tbody>
{% for r in rows %}<tr data-request="{{ r.id }}" data-status="{{ r.status }}"><td class="num">{{ r.id }}</td><td>{{ r.name }}<br><span class="code">{{ r.resource }}</span></td>
<td>{{ r.consumer if deciding else r.provider }}</td><td>{{ r.fields | join("、") }}{% if r.unmasked %}<br><span class="note">明文：{{ r.unmasked | join("、") }}</span>{% endif %}</td>
<td>{{ r.purpose }}</td><td class="status">{{ r.status_text }}{% if r.reason %}：{{ r.reason }}{% endif %}</td><td>{{ r.created }}</td>
{% if deciding %}<td>{% if r.status == "pending" %}
<form method="post" action="/me/requests/{{ r.id }}/approve"><input type="hidden" name="csrf" value="{{ csrf }}"><input type="text" name="reason" placeholder="意见（可选）"> <button class="approve" type="submit">同意</button></form>
<form method="post" action="/me/requests/{{ r.id }}/reject"><input type="hidden" name="csrf" value="{{ csrf }}"><input type="text" name="reason" required placeholder="拒绝理由"> <button class="reject" type="submit">拒绝</button></form>
{% else %}—{% endif %}</td>{% endif %}</tr>{% endfor %}
</tbody></table></div>{% else %}<p class="note">暂无。</p>{% endif %}{% endmacro %}"""  # noqa: E501

_MESSAGE = """{% extends "base" %}{% block main %}<section class="panel"><p class="error" id="message">{{ message }}</p>
<p>{% if back %}<a href="{{ back }}">返回</a> · {% endif %}<a href="/me">共享申请</a></p></section>{% endblock %}"""

_ENV = Environment(loader=DictLoader({"base": _BASE, "portal": _PORTAL, "login": _LOGIN, "me": _ME,
                                      "message": _MESSAGE, "bar": _BAR, "apply": _APPLY, "own": _OWN}),
                   autoescape=True)
_CSS: list[str] = []


def _css() -> str:
    if not _CSS:
        _CSS.append((PUBLISH_TEMPLATES / "style.css").read_text(encoding="utf-8"))
    return _CSS[0]


def _bar(login: Login) -> str:
    return _ENV.get_template("bar").render(holder=login.caller.holder, is_admin=login.caller.is_admin,
                                           csrf=login.csrf)


def _page(name: str, title: str, *, login: Login | None = None, status: int = 200, subtitle: str = "",
          headers: dict | None = None, **values: Any) -> HTMLResponse:
    csrf = values.pop("csrf", "")
    html = _ENV.get_template(name).render(title=title, subtitle=subtitle, css=_css(), extra_css=_EXTRA_CSS,
                                          login=login, bar=_bar(login) if login else "",
                                          csrf=login.csrf if login else csrf, **values)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def _message(login: Login | None, message: str, status: int, back: str | None = None) -> HTMLResponse:
    return _page("message", "无法完成", login=login, status=status, message=message, back=back)


# ---- the open portal -------------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def portal(request: Request) -> HTMLResponse:
    state = request.app.state.citylake
    open_pages = state.settings.directory_dir / SITE_FOLDER / OPEN_FOLDER / "r"
    resources = []
    for reg in sorted((r for r in state.regs if share.is_open(r)), key=lambda r: (r.department, r.resource)):
        titles = column_titles(reg)
        resources.append({
            "resource": reg.resource, "name": reg.name, "provider": reg.department_name,
            "update_cycle": reg.update_cycle, "condition": reg.open.condition,
            "fields": [{"name": f, "title": titles.get(f, f)} for f in share.open_fields(reg)],
            "page": f"/open/r/{reg.resource}.html" if (open_pages / f"{reg.resource}.html").is_file() else None,
        })
    return _page("portal", "政务数据开放门户", login=current_login(request), resources=resources,
                 subtitle=f"{len(resources)} 个开放数据资源")


@router.get("/open/{path:path}")
def open_directory(path: str, request: Request) -> Response:
    """The published open directory (public information items only, by construction)."""
    folder = request.app.state.citylake.settings.directory_dir / SITE_FOLDER / OPEN_FOLDER
    found = _inside(folder, path)
    if found is None:
        return _message(None, "没有这个页面。", 404, "/")
    return FileResponse(found, headers={"X-Content-Type-Options": "nosniff"})


# ---- login ---------------------------------------------------------------------------------------------
def _safe_next(target: str) -> str:
    return target if NEXT_RE.match(target or "") and "//" not in target and ".." not in target \
        else "/directory/index.html"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "") -> Response:
    if current_login(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303, headers=PAGE_HEADERS)
    return _login_page(request, next)


def _login_page(request: Request, next: str, error: str = "", status: int = 200) -> HTMLResponse:
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{20,64}", nonce):
        nonce = secrets.token_urlsafe(24)
    response = _page("login", "部门登录", status=status, subtitle="政务数据资源目录与共享申请",
                     csrf=_mac(_secret(request), "login", nonce), next=_safe_next(next), error=error)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path="/login", httponly=True, samesite="lax",
                        secure=_secure(request))
    return response


@router.post("/login")
def login(request: Request, form: Form) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    target = _one(form, "next")
    if not nonce or not _check_csrf(_mac(_secret(request), "login", nonce), form):
        return _login_page(request, target, "登录表单已过期，请重新输入密钥。", 403)
    state = request.app.state.citylake
    with state.session() as s:
        key = share.find_key(s, _one(form, "key"))
        key_id = key.id if key is not None else None
    if key_id is None:
        return _login_page(request, target, "密钥无效或已吊销。", 401)
    exp = int(time.time()) + SESSION_SECONDS
    cookie = sign(_secret(request), {"key": key_id, "sid": secrets.token_urlsafe(18), "exp": exp})
    response = RedirectResponse(_safe_next(target), status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, path="/", httponly=True, samesite="lax",
                        secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, form: Form) -> Response:
    who = current_login(request)
    if who is not None:
        if not _check_csrf(who.csrf, form):
            return _message(who, "表单已过期，请重试。", 403, "/me")
        _logged_out(request).add(who.sid, who.exp)
    response = RedirectResponse("/", status_code=303, headers=PAGE_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return response


# ---- the internal directory ------------------------------------------------------------------------------
def _inside(folder: Path, rel: str) -> Path | None:
    """The file ``rel`` names inside ``folder`` (a folder: its index.html), or None: nothing there, or
    outside it (``..``, absolute paths, links out)."""
    if "\x00" in rel or "\\" in rel:
        return None
    base = folder.resolve()
    try:
        target = (base / rel.lstrip("/")).resolve()
    except (OSError, RuntimeError):
        return None
    if target != base and base not in target.parents:
        return None
    if target.is_dir():
        target = target / "index.html"
    return target if target.is_file() else None


@router.get("/directory")
def directory_root(request: Request) -> Response:
    if current_login(request) is None:
        return _to_login(request)
    return RedirectResponse("/directory/index.html", status_code=303, headers=PAGE_HEADERS)


@router.get("/directory/{path:path}")
def directory(path: str, request: Request) -> Response:
    who = current_login(request)
    if who is None:  # before anything else: nothing of the site, not even whether a page exists
        return _to_login(request)
    state = request.app.state.citylake
    found = _inside(state.settings.directory_dir / SITE_FOLDER, path)
    if found is None:
        return _message(who, "没有这个页面（目录尚未发布，或资源已撤销）。", 404, "/directory/index.html")
    if found.suffix != ".html":
        return FileResponse(found, headers=PAGE_HEADERS)
    html = found.read_text(encoding="utf-8")
    extra = ""
    rel = found.relative_to(state.settings.directory_dir.resolve() / SITE_FOLDER).as_posix()
    match = re.fullmatch(r"r/([A-Za-z0-9_-]+)\.html", rel)
    if match and match.group(1) in state.by_resource:
        extra = _resource_panel(state, who, state.by_resource[match.group(1)])
    return HTMLResponse(_inject(html, f"<style>{_EXTRA_CSS}</style>{_bar(who)}", extra), headers=PAGE_HEADERS)


def _inject(html: str, bar: str, panel: str) -> str:
    """The bar after ``<body>``, the panel at the top of ``<main>`` (after the bar without one)."""
    at = html.find("<body>")
    html = html[: at + 6] + bar + html[at + 6:] if at >= 0 else bar + html
    if panel:
        at = html.find('<main class="wrap">')
        cut = at + len('<main class="wrap">') if at >= 0 else html.find("</nav>") + len("</nav>")
        html = html[:cut] + panel + html[cut:]
    return html


def _resource_panel(state, who: Login, reg: Registration) -> str:
    if reg.is_base or who.caller.is_admin:
        return ""
    if reg.department == who.caller.holder:
        quality = (state.settings.directory_dir / SITE_FOLDER / "q" / f"{reg.resource}.html").is_file()
        return _ENV.get_template("own").render(reg=reg, quality=quality)
    if reg.share.type != share.CONDITIONAL:
        return ""
    titles = column_titles(reg)
    shared = set(share.shared_fields(reg))
    fields = [{"name": f.name, "title": titles.get(f.name, f.name), "sensitivity": f.sensitivity}
              for f in reg.fields if f.name in shared]
    with state.session() as s:
        try:
            acc = share.access(s, who.caller, reg)
            granted = f"已获授权（申请 {acc.grant_id}）：{'、'.join(titles.get(f, f) for f in acc.fields)}。可再次申请更多信息项。"
        except share.Forbidden:
            granted = ""
        last = share.latest_request(s, who.caller.holder, reg.resource)
        if granted:
            text = granted
        elif last is None:
            text = "本部门尚未申请。"
        else:
            text = f"申请 {last.id} {STATUS_WORDS.get(last.status, last.status)}" + (
                f"：{last.reason}" if last.reason else "") + "。"
    return _ENV.get_template("apply").render(reg=reg, fields=fields, csrf=who.csrf, state_text=text,
                                             personal=[f for f in fields if f["sensitivity"] == "personal"])


# ---- requests --------------------------------------------------------------------------------------------
@router.post("/apply/{resource}")
def apply(resource: str, request: Request, form: Form) -> Response:
    who = current_login(request)
    if who is None:
        return _to_login(request, "/me")
    back = f"/directory/r/{resource}.html"
    if not _check_csrf(who.csrf, form):
        return _message(who, "表单已过期，请刷新页面后重试。", 403, back)
    state = request.app.state.citylake
    reg = state.by_resource.get(resource)
    if reg is None:
        return _message(who, f"没有资源 {resource}。", 404, "/directory/index.html")
    if not form.get("fields"):  # none ticked is not "all of them" (the API's default)
        return _message(who, "请至少选择一个信息项。", 400, back)
    try:
        with state.session() as s:
            made = share.create_request(s, who.caller, reg, form.get("fields") or [], _one(form, "purpose"),
                                        form.get("unmasked") or [])
            made_id = made.id
    except share.ShareError as exc:
        return _message(who, str(exc), exc.status, back)
    return RedirectResponse(f"/me?made={made_id}", status_code=303, headers=PAGE_HEADERS)


@router.get("/me", response_class=HTMLResponse)
def my_requests(request: Request, made: int | None = None) -> Response:
    who = current_login(request)
    if who is None:
        return _to_login(request)
    state = request.app.state.citylake
    holder = who.caller.holder
    with state.session() as s:
        stmt = select(ShareRequest).order_by(ShareRequest.id.desc())
        rows = list(s.scalars(stmt if who.caller.is_admin else
                              stmt.where(or_(ShareRequest.provider == holder, ShareRequest.consumer == holder))))
    zone = ZoneInfo(state.settings.timezone)
    views = [_request_view(state, r, zone) for r in rows]
    provided = [v for v, r in zip(views, rows, strict=True) if who.caller.is_admin or r.provider == holder]
    asked = [v for v, r in zip(views, rows, strict=True) if r.consumer == holder]
    own = [r for r in state.regs if r.department == holder and not r.is_base]
    # the quarantined rows themselves are the quarantine API's (keyed), when the service has it
    quarantine_api = any(getattr(route, "path", "") == "/api/v1/quarantine" for route in request.app.routes)
    return _page("me", "共享申请", login=who, subtitle=f"{holder} 的共享申请与审核", provided=provided,
                 asked=asked, own=own, made=made, quarantine_api=quarantine_api)


def _request_view(state, r: ShareRequest, zone: ZoneInfo) -> dict:
    reg = state.by_resource.get(r.resource)
    titles = column_titles(reg) if reg else {}
    return {"id": r.id, "resource": r.resource, "name": reg.name if reg else r.resource, "consumer": r.consumer,
            "provider": r.provider, "fields": [titles.get(f, f) for f in r.fields],
            "unmasked": [titles.get(f, f) for f in r.unmasked], "purpose": r.purpose, "status": r.status,
            "status_text": STATUS_WORDS.get(r.status, r.status), "reason": r.reason,
            "created": _local(r.created_at, zone)}


def _local(at: datetime | None, zone: ZoneInfo) -> str:
    if at is None:
        return "—"
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _decide(request: Request, form: dict[str, list[str]], request_id: int, approve: bool) -> Response:
    who = current_login(request)
    if who is None:
        return _to_login(request, "/me")
    if not _check_csrf(who.csrf, form):
        return _message(who, "表单已过期，请刷新页面后重试。", 403, "/me")
    try:
        with request.app.state.citylake.session() as s:
            share.decide(s, who.caller, request_id, approve, _one(form, "reason") or None)
    except share.ShareError as exc:
        return _message(who, str(exc), exc.status, "/me")
    return RedirectResponse("/me", status_code=303, headers=PAGE_HEADERS)


@router.post("/me/requests/{request_id}/approve")
def approve(request_id: int, request: Request, form: Form) -> Response:
    return _decide(request, form, request_id, True)


@router.post("/me/requests/{request_id}/reject")
def reject(request_id: int, request: Request, form: Form) -> Response:
    return _decide(request, form, request_id, False)
