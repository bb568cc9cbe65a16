"""The data service on the curated query lake (tests/stages/test_query.py builds it once per run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="session")
def query_lake(spark, tmp_path_factory):
    from tests.stages.test_query import query_lake as build

    return build(spark, tmp_path_factory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _citylake(env: dict, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("citylake")
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)


def _issue(env: dict, *who: str) -> str:
    done = _citylake(env, "keys", "issue", *who)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().rsplit(" ", 1)[-1]


@pytest.fixture(scope="module")
def service(query_lake, tmp_path_factory):
    """The service's base URL, the lake's settings and a key per caller (gaj and scjg provide; mzj, a
    department with no resource of its own, and rsj ask; an administrator)."""
    home = tmp_path_factory.mktemp("service")
    env = {**os.environ, **query_lake.as_env(),
           "CITYLAKE_DIRECTORY_URL": f"sqlite:///{home / 'directory.db'}"}
    keys = {d: _issue(env, "--department", d) for d in ("gaj", "scjg", "mzj", "rsj")}
    keys["admin"] = _issue(env, "--admin")
    port = _free_port()
    log = home / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).with_name("citylake")), "serve", "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"citylake serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, query_lake, keys, env
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
