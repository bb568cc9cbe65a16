"""The data service on the curated query lake (tests/stages/test_query.py builds it once per run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Served:
    """A running `citylake serve`: its base URL, environment, keys (holder -> key) and log file."""

    base: str
    env: dict
    keys: dict[str, str]
    log: Path


@contextmanager
def serving(query_lake, home: Path, extra_env: dict | None = None, *args: str,
            holders: tuple[str, ...] = ("gaj", "scjg", "mzj", "rsj", "admin")) -> Iterator[Served]:
    """`citylake serve [args]` on the query lake with a directory database in ``home``, the environment
    plus ``extra_env``, a key per holder (``admin``: an administrator); its output in ``home/serve.log``.
    Ready once it accepts connections (uvicorn listens after the app has started), so waiting sends
    no request that the rate limits would count; stopped on leaving."""
    env = {**os.environ, **query_lake.as_env(),
           "CITYLAKE_DIRECTORY_URL": f"sqlite:///{home / 'directory.db'}", **(extra_env or {})}
    keys = {h: _issue(env, "--admin") if h == "admin" else _issue(env, "--department", h) for h in holders}
    port = _free_port()
    log = home / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).with_name("citylake")), "serve", "--port", str(port), *args],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"citylake serve did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield Served(f"http://127.0.0.1:{port}", env, keys, log)
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


# The functional tests are not about the rate limits (test_safety.py is): limits they never reach.
UNLIMITED = {"CITYLAKE_SERVICE_RATE_PER_MINUTE": "100000", "CITYLAKE_SERVICE_ANON_RATE_PER_MINUTE": "100000"}


@pytest.fixture(scope="module")
def service(query_lake, tmp_path_factory):
    """The service's base URL, the lake's settings and a key per caller (gaj and scjg provide; mzj, a
    department with no resource of its own, and rsj ask; an administrator)."""
    with serving(query_lake, tmp_path_factory.mktemp("service"), UNLIMITED) as served:
        yield served.base, query_lake, served.keys, served.env


@pytest.fixture(scope="module")
def start_service(query_lake, tmp_path_factory):
    """``start_service(extra_env, *args, holders=…)``: another `citylake serve` on the query lake (see
    :func:`serving`), with its own directory database; each is stopped at the module's end."""
    with ExitStack() as stack:
        def start(extra_env: dict | None = None, *args: str, **kw) -> Served:
            return stack.enter_context(serving(query_lake, tmp_path_factory.mktemp("service"), extra_env, *args, **kw))

        yield start
