"""The data service's safety rules (issue 12, point 5), one test each: rate limits per key and per
anonymous client (429 + Retry-After), every error as JSON without a stack trace, keys never logged,
loopback by default, and no start in production on a placeholder secret."""

from __future__ import annotations

import ipaddress
import os
import socket
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from citylake.drivers.service.limits import RateLimit
from citylake.stages.share import key_digest

API = "/api/v1"
TRACE_MARKS = ("Traceback", 'File "', "RuntimeError", "site-packages")


def _get(base: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    headers = {**({"Authorization": f"Bearer {key}"} if key else {}), **kw.pop("headers", {})}
    return httpx.request(kw.pop("method", "GET"), base + path, headers=headers, timeout=60, **kw)


def _retry_after(answer: httpx.Response) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert "too many requests" in answer.json()["error"]
    return int(answer.headers["Retry-After"])


@pytest.fixture(scope="module")
def plain(start_service):
    """`citylake serve` with the default limits and no --host."""
    return start_service(None, holders=("gaj", "mzj", "admin"))


# ---- rate limits ---------------------------------------------------------------------------------
def test_the_limits_count_a_bucket_per_key_digest_and_per_client_and_refill():
    """The middleware alone, on a clock the test moves: 2 a minute per key, 1 anonymous."""
    now = [1000.0]
    looked_up = []

    async def ok(scope, receive, send):
        await PlainTextResponse("ok")(scope, receive, send)

    def is_live(key: str) -> bool:
        looked_up.append(key)
        return key == "clk_good"

    limiter = RateLimit(ok, per_key=2, anonymous=1, is_live=is_live, clock=lambda: now[0])
    client = TestClient(limiter)
    good = {"Authorization": "Bearer clk_good"}
    assert client.get("/").status_code == 200
    assert (answer := client.get("/x")).status_code == 429 and answer.headers["Retry-After"] == "60"
    assert answer.json() == {"error": "too many requests: slow down and retry after the Retry-After seconds"}
    assert [client.get("/", headers=good).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/", headers=good).headers["Retry-After"] == "30"
    # an unknown key and a malformed header are anonymous: the client's bucket, already empty
    assert client.get("/", headers={"Authorization": "Bearer clk_guess"}).status_code == 429
    assert client.get("/", headers={"Authorization": "Basic clk_good"}).status_code == 429
    now[0] += 30  # half a minute: one more for the key, half a token for the public
    assert client.get("/", headers=good).status_code == 200
    assert client.get("/").headers["Retry-After"] == "30"
    now[0] += 30
    assert client.get("/").status_code == 200
    # a key's bucket is named by its digest, the public's by the address; the key itself nowhere
    assert set(limiter.keys._buckets) == {key_digest("clk_good")}
    assert set(limiter.anonymous._buckets) == {"testclient"}
    assert looked_up.count("clk_good") == 1, "a live key is remembered (by digest), not looked up each time"
    assert "clk_good" not in repr(limiter.__dict__) and "clk_guess" not in repr(limiter.__dict__)


@pytest.mark.spark
def test_over_the_limit_a_key_and_the_public_get_429_with_retry_after(start_service):
    served = start_service({"CITYLAKE_SERVICE_RATE_PER_MINUTE": "4", "CITYLAKE_SERVICE_ANON_RATE_PER_MINUTE": "3"},
                           holders=("gaj", "mzj"))
    base, gaj, mzj = served.base, served.keys["gaj"], served.keys["mzj"]
    assert [_get(base, f"{API}/catalog").status_code for _ in range(3)] == [200] * 3
    assert 1 <= _retry_after(_get(base, f"{API}/catalog")) <= 20  # 3 a minute: a request every 20 s
    assert _retry_after(_get(base, "/openapi.json")) >= 1  # per client, whatever the path
    # keys have buckets of their own, one each
    assert [_get(base, f"{API}/catalog", gaj).status_code for _ in range(4)] == [200] * 4
    assert 1 <= _retry_after(_get(base, f"{API}/catalog", gaj)) <= 15
    assert _get(base, f"{API}/catalog", mzj).status_code == 200
    # a wrong key is the public: trying keys is limited like anonymous use
    assert _retry_after(_get(base, f"{API}/catalog", "clk_" + "x" * 43)) >= 1


# ---- errors ------------------------------------------------------------------------------------------
@pytest.mark.spark
def test_every_error_is_json_without_a_stack_trace(plain):
    base, gaj = plain.base, plain.keys["gaj"]
    cases = [
        (_get(base, "/no/such/path"), 404),
        (_get(base, f"{API}/nothing", gaj), 404),
        (_get(base, f"{API}/catalog", method="DELETE"), 405),
        (_get(base, f"{API}/open/enterprise_registration/rows", params={"limit": 0}), 422),
        (_get(base, f"{API}/open/enterprise_registration/rows", params={"limit": 1001}), 422),
        (_get(base, f"{API}/open/enterprise_registration/rows", params={"offset": -1}), 422),
        (_get(base, f"{API}/open/enterprise_registration/download", params={"format": "pdf"}), 422),
        (_get(base, f"{API}/requests", gaj, method="POST", json={}), 422),
        (_get(base, f"{API}/requests", gaj, method="POST", content=b"{not json",
              headers={"Content-Type": "application/json"}), 422),
    ]
    for answer, status in cases:
        assert answer.status_code == status, (answer.request.url, answer.text)
        assert answer.headers["content-type"].startswith("application/json"), answer.request.url
        body = answer.json()
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"], body
        assert not any(mark in answer.text for mark in TRACE_MARKS), answer.text
    assert cases[2][0].headers["allow"] == "GET"


def test_an_unexpected_error_is_a_json_500_and_its_traceback_goes_to_the_log_only(settings, caplog):
    from citylake.drivers.service.app import create_app

    app = create_app(replace(settings, directory_url=f"sqlite:///{settings.home / 'service.db'}"))

    def boom() -> dict:
        raise RuntimeError("internal detail: /srv/secret/path")

    app.add_api_route(f"{API}/boom", boom)
    with caplog.at_level("ERROR", logger="citylake.service"):
        answer = TestClient(app).get(f"{API}/boom")  # raise_server_exceptions: nothing reaches the client
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("application/json")
    assert set(answer.json()) == {"error"} and "internal error" in answer.json()["error"]
    assert "internal detail" not in answer.text and not any(m in answer.text for m in TRACE_MARKS)
    (record,) = [r for r in caplog.records if r.name == "citylake.service"]
    assert f"GET {API}/boom" in record.getMessage() and record.exc_info[0] is RuntimeError
    assert "internal detail: /srv/secret/path" in caplog.text and "Traceback" in caplog.text


# ---- keys --------------------------------------------------------------------------------------------
@pytest.mark.spark
def test_keys_are_never_logged_nor_audited(plain):
    base, gaj, mzj, admin = plain.base, plain.keys["gaj"], plain.keys["mzj"], plain.keys["admin"]
    wrong = "clk_" + "w" * 43
    assert _get(base, f"{API}/catalog", gaj).status_code == 200
    assert _get(base, f"{API}/resources/resident_population/rows", gaj, params={"limit": 2}).status_code == 200
    asked = _get(base, f"{API}/requests", mzj, method="POST",
                 json={"resource": "resident_population", "fields": ["gender"], "purpose": "核查"})
    assert asked.status_code == 201, asked.text
    assert _get(base, f"{API}/requests/{asked.json()['id']}/approve", gaj, method="POST").status_code == 200
    assert _get(base, f"{API}/resources/resident_population/rows", mzj, params={"limit": 2}).status_code == 200
    assert _get(base, f"{API}/audit", admin).status_code == 200
    assert _get(base, f"{API}/catalog", wrong).status_code == 401
    assert httpx.get(base + f"{API}/catalog", headers={"Authorization": f"Basic {gaj}"}).status_code == 401
    assert _get(base, f"{API}/no-such-path", gaj).status_code == 404
    assert _get(base, f"{API}/resources/resident_population/rows", mzj, params={"limit": 0}).status_code == 422

    log = plain.log.read_text(encoding="utf-8", errors="replace")
    assert "Uvicorn running on" in log, "the server's output is captured"
    secrets = [(k, key_digest(k)) for k in (gaj, mzj, admin, wrong)]
    for raw, digest in secrets:
        assert raw not in log and digest not in log, "a key or its digest in the server's log"
    # the directory database: the digest of a live key is in api_keys (how a key is checked), and
    # nowhere else; no key anywhere; the audit log names holders
    db = Path(plain.env["CITYLAKE_DIRECTORY_URL"].removeprefix("sqlite:///"))
    with sqlite3.connect(db) as con:
        audit = con.execute("SELECT * FROM audit_log").fetchall()
        dump = list(con.iterdump())
    assert {row[2] for row in audit} >= {"gaj", "mzj"}
    for raw, digest in secrets:
        assert not any(raw in line for line in dump)
        assert not any(digest in str(v) for row in audit for v in row)
        assert all(line.startswith('INSERT INTO "api_keys"') for line in dump if digest in line)


# ---- where it listens ------------------------------------------------------------------------------
def _non_loopback_addresses() -> list[str]:
    found = set()
    try:
        found.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET))
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # UDP: no packet is sent; the route's source address
            found.add(s.getsockname()[0])
        except OSError:
            pass
    return sorted(a for a in found if not ipaddress.ip_address(a).is_loopback and not ipaddress.ip_address(a).is_unspecified)


def _reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.spark
def test_serve_listens_on_loopback_by_default(plain, start_service):
    from citylake.drivers.cli.main import build_parser

    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    port = int(plain.base.rsplit(":", 1)[1])
    assert _reachable("127.0.0.1", port)
    addresses = _non_loopback_addresses()
    if not addresses:
        return  # a machine with loopback only: the default is all there is to check
    assert not any(_reachable(a, port) for a in addresses), f"started without --host, reachable on {addresses}"
    # the control: the same addresses do reach a server told to listen on all of them
    everywhere = start_service(None, "--host", "0.0.0.0", holders=())
    assert all(_reachable(a, int(everywhere.base.rsplit(":", 1)[1])) for a in addresses)


# ---- production ------------------------------------------------------------------------------------
def _serve_cli(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CITYLAKE_", "AWS_"))}
    clean.update({"CITYLAKE_HOME": str(tmp_path), "CITYLAKE_ENV": "production", **env})
    exe = Path(sys.executable).with_name("citylake")
    return subprocess.run([str(exe), "serve", "--port", "1"], env=clean, capture_output=True, text=True, timeout=120)


def test_production_refuses_placeholder_or_missing_secrets(tmp_path):
    missing = _serve_cli(tmp_path)
    assert missing.returncode == 2, missing.stderr
    assert missing.stderr.startswith("citylake serve: error: refusing to start in production (CITYLAKE_ENV=production)")
    assert "CITYLAKE_RECORD_KEY_SECRET is not set" in missing.stderr
    # .env.example's placeholders, as docker-compose.yml hands them to the service
    placeholders = _serve_cli(
        tmp_path, CITYLAKE_RECORD_KEY_SECRET="change-me-record-key-secret",
        CITYLAKE_S3_ACCESS_KEY="steward", CITYLAKE_S3_SECRET_KEY="change-me-steward-secret",
        CITYLAKE_DIRECTORY_URL="postgresql+psycopg2://citylake:change-me-directory-db@postgres:5432/citylake_directory",
        CITYLAKE_CATALOG_URI="postgresql+psycopg2://citylake_reader:change-me-catalog-reader@postgres:5432/citylake_catalog")
    assert placeholders.returncode == 2, placeholders.stderr
    for var in ("CITYLAKE_RECORD_KEY_SECRET", "CITYLAKE_S3_SECRET_KEY", "CITYLAKE_DIRECTORY_URL", "CITYLAKE_CATALOG_URI"):
        assert f"{var} still holds the placeholder of .env.example" in placeholders.stderr, var
    assert "is not set" not in placeholders.stderr
    assert "change-me-" not in placeholders.stderr.replace("(change-me…)", ""), "the values themselves are not printed"
    assert "Traceback" not in missing.stderr + placeholders.stderr


@pytest.mark.spark
def test_production_starts_with_real_secrets(start_service, query_lake):
    served = start_service({"CITYLAKE_ENV": "production",
                            "CITYLAKE_RECORD_KEY_SECRET": query_lake.record_secret().decode()}, holders=())
    assert _get(served.base, f"{API}/catalog").status_code == 200
