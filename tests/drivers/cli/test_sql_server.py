"""`citylake sql-server`: a real Spark Connect server over the query lake, a client in another process
counting every curated table by its short name, a wrong token refused, the settings file kept private,
and a listening address other machines reach refused without a token."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from citylake.drivers.cli import sql_server
from tests.drivers.cli.helpers import run
from tests.stages.test_query import RESOURCES, curated_rows

TOKEN = "test-token-for-the-bi-endpoint"
CLIENT = textwrap.dedent("""
    import json, sys
    from pyspark.sql import SparkSession
    port, token, tables = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = {}
    s = SparkSession.builder.remote(f"sc://localhost:{port}/;token={token}").create()
    for t in tables:
        out[t] = s.sql(f"SELECT count(*) AS n FROM {t}").collect()[0]["n"]
    try:
        SparkSession.builder.remote(f"sc://localhost:{port}/;token=wrong-{token}").create().sql("SELECT 1").collect()
        out["wrong_token"] = "accepted"
    except Exception as exc:
        out["wrong_token"] = type(exc).__name__ + ": " + " ".join(str(exc).split())[:500]
    print(json.dumps(out))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def test_print_conf_hides_the_secrets_and_makes_the_catalog_the_default(env, monkeypatch, capsys):
    monkeypatch.setenv(sql_server.TOKEN_ENV, TOKEN)
    code, out, err = run(capsys, "sql-server", "--port", "15123", "--print-conf")
    assert code == 0, err
    conf = dict(line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith("/"))
    assert conf["spark.sql.defaultCatalog"] == env.catalog_name
    assert conf["spark.connect.grpc.binding.address"] == "127.0.0.1"
    assert conf["spark.connect.grpc.binding.port"] == "15123"
    assert conf["spark.connect.authenticate.token"] == "***" and TOKEN not in out
    assert out.splitlines()[-1].endswith(f"--class {sql_server.SERVER_CLASS} spark-internal")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "sql.example"])
def test_a_host_other_machines_reach_needs_a_token(env, monkeypatch, capsys, host):
    monkeypatch.delenv(sql_server.TOKEN_ENV, raising=False)
    code, out, err = run(capsys, "sql-server", "--host", host)
    assert code == 2 and out == ""
    assert err == (f"citylake sql-server: error: --host {host} is reachable from other machines: set "
                   f"{sql_server.TOKEN_ENV} (clients then connect with sc://HOST:PORT/;token=…)\n")


@pytest.mark.spark
@pytest.mark.slow
def test_a_spark_connect_client_counts_every_curated_table_and_a_wrong_token_is_refused(query_lake):
    port = _free_port()
    env = {**os.environ, **query_lake.as_env(), sql_server.TOKEN_ENV: TOKEN}
    citylake = Path(sys.executable).with_name("citylake")
    log = query_lake.home / "sql-server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(citylake), "sql-server", "--port", str(port)], env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not _listening(port):
            assert server.poll() is None, f"sql-server exited {server.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"sql-server did not listen in 180 s:\n{log.read_text()[-3000:]}"
            time.sleep(1)
        conf = query_lake.home / "secrets" / "sql-server.conf"
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600, "the settings file holds secrets"
        assert TOKEN in conf.read_text()
        from citylake.core.registry import load_registrations

        regs = [r for r in load_registrations(query_lake.resources_dir) if r.resource in RESOURCES]
        names = [f"{r.department}.{r.resource}" for r in regs]
        done = subprocess.run([sys.executable, "-c", CLIENT, str(port), TOKEN, *names], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        counts = json.loads(done.stdout.strip().splitlines()[-1])
        for reg, name in zip(regs, names, strict=True):
            assert counts[name] == curated_rows(query_lake, reg) > 0, name
        assert "Invalid authentication token" in counts["wrong_token"], counts["wrong_token"]
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
