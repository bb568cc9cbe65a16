"""The directory behind a login (citylake/drivers/service/site.py), over real HTTP against `citylake
serve` on a test lake with a published directory: the public gets the open portal and never a byte of
the internal site; a department signs in with its key (a signed, HttpOnly session cookie), browses
the internal directory, applies for a 有条件共享 resource from its page, the provider approves it on
its requests page, and logging out or revoking the key ends the session. The pages are driven in
headless Chromium (skipped locally without it, failing with CI=true)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from html import unescape

import httpx
import pytest

from citylake.core.registry import load_registrations
from citylake.core.settings import REPO_ROOT, Settings
from citylake.drivers.service import site
from citylake.stages import share
from tests.drivers.service.conftest import _citylake, _issue

ARTIFACTS = REPO_ROOT / "test-artifacts" / "service-site"
# resources no open page may name: 有条件共享 and not open
INTERNAL_ONLY = ("resident_population", "户籍人口基本信息", "housing_fund_units", "住房公积金缴存单位信息")
HTML = {"Accept": "text/html,application/xhtml+xml"}
INTERNAL_PAGES = ("/directory/index.html", "/directory/", "/directory", "/directory/r/resident_population.html",
                  "/directory/q/enterprise_registration.html", "/directory/open/index.html",
                  "/directory/no-such-page.html", "/directory/..%2F..%2Fsecrets%2Fsession", "/me")


@pytest.fixture(scope="module")
def lake_site(service):
    """The service, on a lake whose directory is published (the catalogue job's site folder)."""
    base, lake, keys, env = service
    folder = lake.directory_dir / "site"
    if not (folder / "index.html").exists():
        from citylake.stages.publish.publish import publish

        publish(replace(lake, directory_url=env["CITYLAKE_DIRECTORY_URL"]))
    assert (folder / "r" / "resident_population.html").exists()
    return base, lake, keys, env


class _Patient(httpx.HTTPTransport):
    """Waits out the service's rate limit (429 + Retry-After) instead of failing on it."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        import time

        for _ in range(10):
            response = super().handle_request(request)
            if response.status_code != 429:
                return response
            response.read()
            time.sleep(float(response.headers.get("retry-after", "1")))
        return response


def _client(base: str, cookies: dict | None = None) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=60, follow_redirects=False, transport=_Patient(), cookies=cookies)


def _csrf(html: str) -> str:
    return unescape(re.search(r'name="csrf" value="([^"]+)"', html).group(1))


def _login(client: httpx.Client, key: str, **headers) -> httpx.Response:
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post("/login", data={"key": key, "csrf": _csrf(form.text), "next": ""}, headers=headers)


def _sample_values(lake: Settings, resource: str) -> list[str]:
    """The sample cells the internal page of ``resource`` shows (the rows the public must never see)."""
    page = (lake.directory_dir / "site" / "r" / f"{resource}.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="samples">(.*?)</table>', page, re.S)
    assert table, f"the internal page of {resource} shows sample rows"
    cells = [unescape(c) for c in re.findall(r"<td>([^<]+)</td>", table.group(1))]
    return [c for c in cells if len(c) >= 4 and c != "—"]


@pytest.mark.spark
def test_the_public_gets_the_open_portal_and_never_the_internal_site(lake_site):
    base, lake, _keys, _ = lake_site
    regs = load_registrations(lake.resources_dir)
    secrets_seen = _sample_values(lake, "resident_population")
    assert secrets_seen
    anon = _client(base)
    for path in INTERNAL_PAGES:
        r = anon.get(path)
        assert r.status_code == 401 and r.json()["error"].startswith("sign in at /login"), (path, r.status_code)
        assert not any(word in r.text for word in (*INTERNAL_ONLY, *secrets_seen)), path
        r = anon.get(path, headers=HTML)  # a browser is sent to the login page
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), (path, r.status_code)
        assert not any(word in r.text for word in (*INTERNAL_ONLY, *secrets_seen)), path
        landed = anon.get(path, headers=HTML, follow_redirects=True)
        assert landed.url.path == "/login" and 'name="key"' in landed.text, path
        page = re.sub(r'name="next" value="[^"]*"', "", landed.text)  # the address asked for, kept for after
        assert not any(word in page for word in (*INTERNAL_ONLY, *secrets_seen)), path
    # a forged or foreign cookie is no session
    for cookie in ("garbage", site.sign(b"not-the-secret", {"key": 1, "sid": "x", "exp": 2**40})):
        r = _client(base, {site.SESSION_COOKIE: cookie}).get("/directory/index.html")
        assert r.status_code == 401

    portal = anon.get("/")
    assert portal.status_code == 200
    listed = set(re.findall(r'data-resource="([a-z_]+)"', portal.text))
    assert listed == {r.resource for r in regs if share.is_open(r)} == {"air_quality_hourly", "enterprise_registration"}
    assert not any(word in portal.text for word in INTERNAL_ONLY)
    for reg in regs:
        if reg.resource in listed:
            for fmt in ("csv", "xlsx", "json"):
                assert f'href="/api/v1/open/{reg.resource}/download?format={fmt}"' in portal.text
            assert f'href="/api/v1/open/{reg.resource}/rows"' in portal.text
            hidden = [f.name for f in reg.fields if f.sensitivity != "public"]
            assert hidden or reg.resource == "air_quality_hourly"
            assert not any(f">{name}<" in portal.text for name in hidden), reg.resource
            assert all(f">{name}<" in portal.text for name in share.open_fields(reg)), reg.resource
    assert 'href="/docs"' in portal.text
    assert anon.get("/api/v1/open/enterprise_registration/download", params={"format": "csv"}).status_code == 200
    # the published open directory is public; nothing above it is
    assert anon.get("/open/index.html").status_code == 200
    assert "企业登记信息" in anon.get("/open/r/enterprise_registration.html").text
    outside = anon.get("/open/..%2Findex.html")
    assert outside.status_code == 404 and not any(word in outside.text for word in INTERNAL_ONLY)


@pytest.mark.spark
def test_login_sets_a_signed_session_that_logout_and_revocation_end(lake_site):
    base, _lake, keys, env = lake_site
    client = _client(base)
    wrong = _login(client, "clk_" + "x" * 43)
    assert wrong.status_code == 401 and "密钥无效" in wrong.text and site.SESSION_COOKIE not in wrong.cookies
    no_token = client.post("/login", data={"key": keys["gaj"], "csrf": "forged"})
    assert no_token.status_code == 403 and site.SESSION_COOKIE not in no_token.cookies

    signed_in = _login(client, keys["gaj"])
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/directory/index.html"
    cookie = signed_in.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "secure" not in cookie.lower()
    assert keys["gaj"] not in cookie
    index = client.get("/directory/index.html")
    assert index.status_code == 200 and "户籍人口基本信息" in index.text and 'id="svc-holder">gaj<' in index.text
    assert index.headers["cache-control"] == "no-store"
    assert client.get("/directory/..%2F..%2Fsecrets%2Fsession").status_code == 404
    over_https = _login(_client(base), keys["gaj"], **{"X-Forwarded-Proto": "https"})
    assert "secure" in over_https.headers["set-cookie"].lower()

    # forms need the session's token, and name at least one field
    bar = client.get("/me").text
    apply = "/apply/enterprise_registration"
    assert client.post(apply, data={"csrf": "forged", "fields": "uscc", "purpose": "核查"}).status_code == 403
    assert client.post(apply, data={"csrf": _csrf(bar), "purpose": "核查"}).status_code == 400
    assert _client(base).post(apply, data={"fields": "uscc", "purpose": "核查"}).status_code == 401
    assert 'id="as-consumer"' in bar and "暂无" in bar.split('id="as-consumer"')[1]

    # logging out ends the session, even for a copy of its cookie
    copy = dict(client.cookies)
    out = client.post("/logout", data={"csrf": _csrf(bar)})
    assert out.status_code == 303 and out.headers["location"] == "/"
    assert client.get("/directory/index.html").status_code == 401
    assert _client(base, copy).get("/directory/index.html").status_code == 401

    # revoking the key ends its sessions
    key = _issue(env, "--department", "rsj")
    rsj = _client(base)
    assert _login(rsj, key).status_code == 303 and rsj.get("/directory/index.html").status_code == 200
    done = _citylake(env, "keys", "revoke", key[:10])
    assert done.returncode == 0, done.stderr
    assert rsj.get("/directory/index.html").status_code == 401


# ---- in the browser ----------------------------------------------------------------------------------------
def _submit(page, selector: str) -> None:
    """Click a form's button as a person would and wait for the page it leads to."""
    page.events.clear()
    page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
    page.wait_event("Page.loadEventFired")


def _text(page) -> str:
    return page.evaluate("document.body.innerText")


def _browser_login(page, base: str, key: str, start: str = "/directory/index.html") -> None:
    page.goto(base + start)
    assert page.evaluate("location.pathname") == "/login"
    page.evaluate(f"document.getElementById('key').value = {json.dumps(key)}")
    _submit(page, "#login-submit")


@pytest.mark.spark
def test_a_department_applies_from_the_page_and_the_provider_approves(lake_site, browser):
    base, lake, keys, _ = lake_site
    page = browser.page()
    # anonymous: the internal page sends to the login form, and shows nothing of the site
    page.goto(base + "/directory/r/resident_population.html")
    assert page.evaluate("location.pathname") == "/login"
    assert not any(word in _text(page) for word in (*INTERNAL_ONLY, *_sample_values(lake, "resident_population")))
    page.evaluate("document.getElementById('key').value = 'clk_wrong'")
    _submit(page, "#login-submit")
    assert "密钥无效" in page.evaluate("document.getElementById('login-error').textContent")

    # gaj signs in and lands where it was going
    page.evaluate(f"document.getElementById('key').value = {json.dumps(keys['gaj'])}")
    _submit(page, "#login-submit")
    assert page.evaluate("location.pathname") == "/directory/r/resident_population.html"
    assert page.evaluate("document.getElementById('svc-holder').textContent") == "gaj"
    assert page.evaluate("document.getElementById('own-resource') !== null"), "its own resource: no 申请共享"
    assert page.evaluate("document.cookie") == "", "the session cookie is HttpOnly"

    # scjg's enterprise_registration is 有条件共享: 申请共享 for two fields
    page.goto(base + "/directory/r/enterprise_registration.html")
    assert page.evaluate("document.querySelector('#apply-submit').textContent") == "申请共享"
    assert "尚未申请" in page.evaluate("document.getElementById('apply-state').textContent")
    page.evaluate("""document.querySelectorAll('input[name=fields]').forEach(
        b => { b.checked = ['uscc', 'enterprise_name'].includes(b.value); })""")
    page.type_text("#purpose", "核查辖区企业登记状态")
    page.screenshot(ARTIFACTS / "apply-enterprise_registration.png", width=1280)
    _submit(page, "#apply-submit")
    assert page.evaluate("location.pathname") == "/me"
    row = "document.querySelector('#as-consumer tr[data-request]')"
    request_id = int(page.evaluate(f"{row}.dataset.request"))
    assert page.evaluate(f"{row}.dataset.status") == "pending"
    assert "统一社会信用代码、企业名称" in page.evaluate(f"{row}.innerText")
    page.goto(base + "/directory/r/enterprise_registration.html")
    assert f"申请 {request_id} 待审核" in page.evaluate("document.getElementById('apply-state').textContent")
    _submit(page, "#logout")
    assert page.evaluate("location.pathname") == "/"
    page.goto(base + "/directory/index.html")
    assert page.evaluate("location.pathname") == "/login", "logged out"

    # the provider sees it on its page and approves it
    _browser_login(page, base, keys["scjg"], start="/me")
    assert page.evaluate("location.pathname") == "/me"
    mine = f"document.querySelector('#as-provider tr[data-request=\"{request_id}\"]')"
    assert page.evaluate(f"{mine}.dataset.status") == "pending" and "gaj" in page.evaluate(f"{mine}.innerText")
    page.screenshot(ARTIFACTS / "requests-scjg.png", width=1280)
    page.evaluate(f"{mine}.querySelector('form[action$=approve] input[name=reason]').value = '职能相符'")
    _submit(page, f"#as-provider tr[data-request=\"{request_id}\"] button.approve")
    assert page.evaluate(f"{mine}.dataset.status") == "approved"
    _submit(page, "#logout")

    # the grant is the one the API answers by
    granted = httpx.get(f"{base}/api/v1/resources/enterprise_registration/rows", params={"limit": 3},
                        headers={"Authorization": f"Bearer {keys['gaj']}"}, timeout=60)
    assert granted.status_code == 200, granted.text
    assert granted.json()["basis"] == "grant" and granted.json()["fields"] == ["uscc", "enterprise_name"]


def test_the_session_secret_is_made_once_on_a_local_lake_and_required_beside_a_shared_one(tmp_path, monkeypatch):
    import os
    import stat

    monkeypatch.delenv("CITYLAKE_SESSION_SECRET", raising=False)
    local = Settings.from_env(home=tmp_path, lake_uri=(tmp_path / "lake").as_uri())
    secret = local.session_signing_secret()
    path = tmp_path / "secrets" / "session"
    assert len(secret) == 64 and path.read_bytes().strip() == secret
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert local.session_signing_secret() == secret != local.record_secret()
    assert "hunter2" not in repr(replace(local, session_secret="hunter2"))
    with pytest.raises(ValueError, match="set CITYLAKE_SESSION_SECRET"):
        replace(local, lake_uri="s3://lake").session_signing_secret()
    assert replace(local, lake_uri="s3://lake", session_secret="s").session_signing_secret() == b"s"
    # a signed session: tampering, another secret or expiry make it nothing
    token = site.sign(secret, {"key": 1, "sid": "a", "exp": 2**40})
    assert site.unsign(secret, token) == {"key": 1, "sid": "a", "exp": 2**40}
    assert site.unsign(b"other", token) is None and site.unsign(secret, token[:-2] + "xx") is None
    assert site.unsign(secret, site.sign(secret, {"key": 1, "sid": "a", "exp": 1})) is None
