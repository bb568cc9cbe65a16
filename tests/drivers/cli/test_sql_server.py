"""`citylake sql-server`: a real Spark Connect server over the query lake, a client in another process
counting every curated table by its short name, a wrong token refused, the settings file kept private,
and a listening address other machines reach refused without a token.

The same for `--protocol hive2` (Spark's Thrift server, HiveServer2): one server with a token shared by
the module's hive2 tests, counted through Hive's JDBC driver (Beeline, as DBeaver connects) and through
SQLAlchemy with PyHive (as Superset connects); a wrong password refused, and no Hive metastore files
left in the server's working folder."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from citylake.drivers.cli import sql_server
from citylake_dev.testing import service_unavailable
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


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_a_hive2_host_other_machines_reach_needs_a_token(env, monkeypatch, capsys, host):
    monkeypatch.delenv(sql_server.TOKEN_ENV, raising=False)
    code, out, err = run(capsys, "sql-server", "--protocol", "hive2", "--host", host)
    assert code == 2 and out == ""
    assert err == (f"citylake sql-server: error: --host {host} is reachable from other machines: set "
                   f"{sql_server.TOKEN_ENV} (clients then connect with jdbc:hive2://HOST:PORT/<namespace>, "
                   f"the token as password)\n")


@pytest.fixture
def jars_dir(env, tmp_path, monkeypatch):
    """A jars folder as scripts/fetch-jars.sh fills it (empty stand-ins): the manifest's and the auth jar."""
    folder = tmp_path / "jars"
    folder.mkdir()
    for name in ("iceberg-spark-runtime-4.1_2.13-1.12.0.jar", "sqlite-jdbc-3.51.3.0.jar", sql_server.AUTH_JAR):
        (folder / name).touch()
    monkeypatch.setenv("CITYLAKE_SPARK_JARS", str(folder))
    return folder


def _printed(out: str) -> tuple[dict[str, str], list[str]]:
    """--print-conf's output: the Spark settings, and the command (its last line) as words."""
    lines = out.splitlines()
    return dict(line.split("=", 1) for line in lines[:-1]), lines[-1].split(" ")


def test_hive2_print_conf_hides_the_token_and_asks_for_it_as_the_password(env, jars_dir, monkeypatch, capsys):
    monkeypatch.setenv(sql_server.TOKEN_ENV, TOKEN)
    code, out, err = run(capsys, "sql-server", "--protocol", "hive2", "--print-conf")
    assert code == 0, err
    assert TOKEN not in out
    conf, argv = _printed(out)
    assert conf["spark.sql.defaultCatalog"] == env.catalog_name
    assert conf["spark.sql.catalogImplementation"] == "in-memory"  # no Hive metastore
    assert not any(key.startswith("spark.connect.") for key in conf)
    # the jars, the auth jar among them, on the driver's class path too (HiveServer2's own threads)
    auth_jar = str(jars_dir / sql_server.AUTH_JAR)
    assert auth_jar in conf["spark.jars"].split(",")
    assert auth_jar in conf["spark.driver.extraClassPath"].split(os.pathsep)
    assert argv[argv.index("--class") + 1:argv.index("spark-internal") + 1] == [sql_server.HIVE2_SERVER_CLASS,
                                                                                "spark-internal"]
    hive = dict(argv[i + 1].split("=", 1) for i, word in enumerate(argv) if word == "--hiveconf")
    assert hive["hive.server2.thrift.bind.host"] == "127.0.0.1"
    assert hive["hive.server2.thrift.port"] == str(sql_server.HIVE2_DEFAULT_PORT) == "10000"
    assert hive["hive.server2.authentication"] == "CUSTOM"
    assert hive["hive.server2.custom.authentication.class"] == sql_server.AUTH_CLASS
    assert hive["hive.server2.enable.doAs"] == "false"


def test_hive2_on_loopback_without_a_token_needs_no_password(env, jars_dir, monkeypatch, capsys):
    monkeypatch.delenv(sql_server.TOKEN_ENV, raising=False)
    code, out, err = run(capsys, "sql-server", "--protocol", "hive2", "--port", "10123", "--print-conf")
    assert code == 0, err
    _, argv = _printed(out)
    hive = dict(argv[i + 1].split("=", 1) for i, word in enumerate(argv) if word == "--hiveconf")
    assert hive["hive.server2.thrift.port"] == "10123"
    assert hive["hive.server2.authentication"] == "NONE"
    assert "hive.server2.custom.authentication.class" not in hive


def test_hive2_with_a_token_needs_the_auth_jar(env, jars_dir, monkeypatch, capsys):
    monkeypatch.setenv(sql_server.TOKEN_ENV, TOKEN)
    (jars_dir / sql_server.AUTH_JAR).unlink()
    code, out, err = run(capsys, "sql-server", "--protocol", "hive2", "--print-conf")
    assert code == 2 and out == ""
    assert f"no {sql_server.AUTH_JAR} in {jars_dir}" in err and "scripts/build-auth-jar.sh" in err


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
        _stop(server)


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()


# ---- HiveServer2 (--protocol hive2) -------------------------------------------------------------
def _curated(query_lake) -> list[tuple[str, int]]:
    """(namespace.table, rows) of every curated table of the query lake."""
    from citylake.core.registry import load_registrations

    regs = [r for r in load_registrations(query_lake.resources_dir) if r.resource in RESOURCES]
    return [(f"{r.department}.{r.resource}", curated_rows(query_lake, r)) for r in regs]


@pytest.fixture(scope="module")
def hive2_server(query_lake, tmp_path_factory):
    """`citylake sql-server --protocol hive2` with a token on a free loopback port, started once for the
    module's hive2 tests (a start takes 10–20 s); yields (port, working folder of the server)."""
    from citylake.core.spark import MissingJars, spark_jars

    try:
        jars = spark_jars(query_lake)
    except MissingJars as exc:
        service_unavailable(str(exc))
    if not any(j.endswith(f"/{sql_server.AUTH_JAR}") for j in jars):
        service_unavailable(f"no {sql_server.AUTH_JAR} in {query_lake.spark_jars_dir}: run "
                            f"scripts/build-auth-jar.sh {query_lake.spark_jars_dir} (make venv does)")
    port = _free_port()
    cwd = tmp_path_factory.mktemp("hive2-cwd")
    env = {**os.environ, **query_lake.as_env(), sql_server.TOKEN_ENV: TOKEN}
    citylake = Path(sys.executable).with_name("citylake")
    log = query_lake.home / "sql-server-hive2.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([str(citylake), "sql-server", "--protocol", "hive2", "--port", str(port)],
                                  env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not _listening(port):
            # a server that does not start fails the tests (never a skip, with CI=true or not)
            if server.poll() is not None:
                pytest.fail(f"sql-server --protocol hive2 exited {server.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"sql-server --protocol hive2 did not listen in 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield port, cwd
    finally:
        _stop(server)


def _beeline(port: int, database: str, password: str, sql: str, home: Path) -> subprocess.CompletedProcess:
    """Hive's JDBC driver through its shell, Beeline, both from pyspark's jars (hive-jdbc, hive-beeline)."""
    # the Java spark-submit runs: JAVA_HOME's, else the one on PATH
    java = shutil.which("java", path=str(Path(os.environ.get("JAVA_HOME", "/nonexistent")) / "bin")) or "java"
    jars = sql_server.spark_home() / "jars"
    return subprocess.run(
        [java, f"-Duser.home={home}",  # Beeline keeps its history under the user's home
         "-cp", f"{jars}/*", "org.apache.hive.beeline.BeeLine",
         "-u", f"jdbc:hive2://127.0.0.1:{port}/{database}", "-n", "analyst", "-p", password,
         "--outputformat=csv2", "--showHeader=false", "--silent=true", "-e", sql],
        capture_output=True, text=True, timeout=300)


@pytest.mark.spark
@pytest.mark.slow
def test_hive2_jdbc_counts_every_curated_table(query_lake, hive2_server, tmp_path):
    port, _ = hive2_server
    tables = _curated(query_lake)
    sql = "SELECT current_catalog(), current_database(); " + " ".join(
        f"SELECT count(*) FROM {name};" for name, _ in tables)
    done = _beeline(port, "scjg", TOKEN, sql, tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    # the catalog is the default one, the URL's namespace the current one
    assert lines[0] == f"{query_lake.catalog_name},scjg", lines
    assert [int(n) for n in lines[1:]] == [rows for _, rows in tables], (lines, tables)
    assert all(rows > 0 for _, rows in tables)


@pytest.mark.spark
@pytest.mark.slow
def test_hive2_sqlalchemy_pyhive_counts_every_curated_table(query_lake, hive2_server):
    """The Superset path: a SQLAlchemy engine on PyHive's hive:// dialect, the token as password."""
    from sqlalchemy import create_engine, inspect, text

    port, _ = hive2_server
    engine = create_engine(f"hive://analyst:{TOKEN}@127.0.0.1:{port}/scjg?auth=CUSTOM")
    try:
        with engine.connect() as conn:
            for name, rows in _curated(query_lake):
                assert conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() == rows > 0, name
            namespaces = inspect(conn).get_schema_names()
    finally:
        engine.dispose()
    assert {name.split(".")[0] for name, _ in _curated(query_lake)} <= set(namespaces)


@pytest.mark.spark
@pytest.mark.slow
def test_hive2_refuses_a_wrong_password_and_a_database_the_catalog_lacks(hive2_server, tmp_path):
    from sqlalchemy import create_engine, text

    port, _ = hive2_server
    done = _beeline(port, "scjg", f"wrong-{TOKEN}", "SELECT 1;", tmp_path)
    assert done.returncode != 0
    assert "Error validating the login" in done.stdout + done.stderr, done.stderr[-3000:]
    engine = create_engine(f"hive://analyst:wrong-{TOKEN}@127.0.0.1:{port}/scjg?auth=CUSTOM")
    try:
        with pytest.raises(Exception, match="Error validating the login"), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    # the lake's catalog has no `default` namespace: a URL must name one that exists (deploy/README.md)
    done = _beeline(port, "default", TOKEN, "SELECT 1;", tmp_path)
    assert done.returncode != 0
    assert "SCHEMA_NOT_FOUND" in done.stdout + done.stderr, done.stderr[-3000:]


@pytest.mark.spark
@pytest.mark.slow
def test_hive2_leaves_no_hive_metastore_files_and_keeps_its_settings_private(query_lake, hive2_server, tmp_path):
    port, cwd = hive2_server
    done = _beeline(port, "base", TOKEN, "SHOW TABLES;", tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list(cwd.iterdir()) == [], "metastore_db, derby.log or spark-warehouse in the server's working folder"
    conf = query_lake.home / "secrets" / sql_server.conf_name("hive2")
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert TOKEN not in conf.read_text(), "hive2 reads the token from its environment"
