"""`citylake sql-server`: SQL over the lake's catalog for BI tools and notebooks, in one of two protocols.

    citylake sql-server                        # Spark Connect on 127.0.0.1:15002, no token needed on loopback
    citylake sql-server --protocol hive2       # HiveServer2 (Thrift/JDBC) on 127.0.0.1:10000
    CITYLAKE_SQL_TOKEN=… citylake sql-server --host 0.0.0.0 --port 15002
    CITYLAKE_SQL_TOKEN=… citylake sql-server --protocol hive2 --host 0.0.0.0 --port 10000

Either way it runs a server class of the Spark that pyspark brings with the jobs' configuration
(:func:`citylake.core.spark.spark_conf`: the Iceberg catalog, its jars, S3) and the catalog as the
default one, so a client writes ``scjg.enterprise_registration`` as ``citylake query`` does:

* ``connect`` (default): Spark's ``SparkConnectServer``. Clients connect with
  ``sc://HOST:PORT/;token=TOKEN`` (pyspark ``SparkSession.builder.remote(…)``).
* ``hive2``: Spark's Thrift server (``HiveThriftServer2``), the HiveServer2 protocol Superset (PyHive,
  ``hive://…``) and DBeaver (Hive JDBC, ``jdbc:hive2://…``) speak. The token is the password, any user
  name; it is checked by ``org.citylake.auth.TokenAuthenticator`` (deploy/spark/auth, built into the
  jars folder by scripts/fetch-jars.sh), HiveServer2's CUSTOM authentication. The session catalog is
  Spark's in-memory one: no Hive metastore, no ``metastore_db`` or ``derby.log`` in the working folder.
  A client names a database in its URL and the server runs ``USE`` on it when the session opens; the
  lake's catalog has no ``default`` namespace, so the URL names an existing one (a department such as
  ``scjg``, or ``base``) — ``/default`` or none is refused with SCHEMA_NOT_FOUND.

Who sees what is decided by the identity the server runs as, not by the server: in production
(docker-compose.yml, services ``sql-server`` and ``bi-server``) it holds the ``analyst`` storage
identity of :mod:`citylake.core.access` — read-only, curated and base-library table folders only — so
raw, standardized and quarantine data cannot be read through it whatever SQL a client sends. A client
can make the server run code, not only SQL (Spark Connect sends code; HiveServer2 clients set Spark
settings for their session and may add jars), so the token must be kept like a password.

The settings (S3 keys, catalog password, token) go to Spark in a properties file readable only by the
owner (``$CITYLAKE_HOME/secrets/sql-server.conf``, ``sql-server-hive2.conf`` for hive2), never on the
command line where ``ps`` shows them; the hive2 server reads the token from its environment.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from citylake.core.settings import ENV, Settings
from citylake.drivers.cli.common import fail

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
HIVE2_SERVER_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
PROTOCOLS = ("connect", "hive2")
DEFAULT_PORT = 15002  # Spark Connect's own default
HIVE2_DEFAULT_PORT = 10000  # HiveServer2's own default
DEFAULT_PORTS = {"connect": DEFAULT_PORT, "hive2": HIVE2_DEFAULT_PORT}
TOKEN_ENV = ENV["sql_token"]
# The HiveServer2 password check (deploy/spark/auth/src/main/java/org/citylake/auth/TokenAuthenticator.java),
# built by scripts/build-auth-jar.sh into the jars folder of the settings (CITYLAKE_SPARK_JARS).
AUTH_CLASS = "org.citylake.auth.TokenAuthenticator"
AUTH_JAR = "citylake-sql-auth.jar"
# How clients connect, for the messages.
CLIENTS = {
    "connect": "sc://HOST:PORT/;token=…",
    "hive2": "jdbc:hive2://HOST:PORT/<namespace>, the token as password",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", choices=PROTOCOLS, default="connect",
                        help="connect: Spark Connect (pyspark, sc://…; the default); "
                             "hive2: HiveServer2 (Superset hive://…, DBeaver and JDBC jdbc:hive2://…)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1); any other needs CITYLAKE_SQL_TOKEN")
    parser.add_argument("--port", type=int, default=None,
                        help=f"port (default {DEFAULT_PORT} for connect, {HIVE2_DEFAULT_PORT} for hive2)")
    parser.add_argument("--print-conf", action="store_true",
                        help="print the Spark settings (secrets hidden) and the command, and exit")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_conf(settings: Settings, host: str, port: int, token: str | None,
                protocol: str = "connect") -> dict[str, str]:
    """Spark's settings for the endpoint: the jobs' own, the catalog as default, the address, the token
    (Spark Connect); for hive2 the settings of Spark's side only — HiveServer2's are :func:`hive_conf`."""
    from citylake.core.spark import MissingJars, spark_conf

    conf = spark_conf(settings)
    conf.update({
        "spark.master": settings.spark_master,
        "spark.app.name": "citylake-sql-server" if protocol == "connect" else f"citylake-sql-server-{protocol}",
        "spark.sql.defaultCatalog": settings.catalog_name,
    })
    if protocol == "connect":
        conf["spark.connect.grpc.binding.address"] = host
        conf["spark.connect.grpc.binding.port"] = str(port)
        if token:
            conf["spark.connect.authenticate.token"] = token
        return conf
    jars = conf["spark.jars"].split(",")
    if token and not any(Path(j).name == AUTH_JAR for j in jars):
        raise MissingJars(f"no {AUTH_JAR} in {settings.spark_jars_dir} (CITYLAKE_SPARK_JARS), which checks "
                          f"the token of hive2 clients: run scripts/build-auth-jar.sh {settings.spark_jars_dir}")
    conf.update({
        # The Thrift server asks for Hive support unless told in-memory: then a Hive metastore (Derby,
        # metastore_db/ in the working folder) would be the session catalog. The lake's catalog is Iceberg.
        "spark.sql.catalogImplementation": "in-memory",
        # HiveServer2 opens sessions (which load the catalog) and loads the password checker on its own
        # threads, which do not see spark.jars: the jars go on the driver's class path as well.
        "spark.driver.extraClassPath": os.pathsep.join(jars),
        # The execution side of HiveServer2 still boots an in-memory Derby database per server; its log
        # goes to the server's stderr rather than to derby.log in the working folder.
        "spark.driver.extraJavaOptions": "-Dderby.stream.error.field=java.lang.System.err",
    })
    return conf


def hive_conf(settings: Settings, host: str, port: int, token: str | None) -> dict[str, str]:
    """HiveServer2's settings (``--hiveconf``; no secret among them: the token stays in the environment)."""
    conf = {
        "hive.server2.thrift.bind.host": host,
        "hive.server2.thrift.port": str(port),
        "hive.server2.transport.mode": "binary",
        # NONE accepts any password: only on loopback without a token, like Spark Connect without one.
        "hive.server2.authentication": "CUSTOM" if token else "NONE",
        # Queries run as the server's own identity, never as the user name a client gives.
        "hive.server2.enable.doAs": "false",
        # No per-query log files (they would go to the system's temporary folder), and Hive's folder
        # for downloaded resources (one per Hive session by default, left behind on a stop) under the home.
        "hive.server2.logging.operation.enabled": "false",
        "hive.downloaded.resources.dir": str(settings.home / "sql-server-hive2" / "resources"),
    }
    if token:
        conf["hive.server2.custom.authentication.class"] = AUTH_CLASS
    return conf


def _hidden(key: str, value: str) -> str:
    secret = ("secret", "password", "token")
    return "***" if any(s in key.lower() for s in secret) else value


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def command(conf_file: Path, protocol: str = "connect", hive: dict[str, str] | None = None) -> list[str]:
    argv = [str(spark_home() / "bin" / "spark-submit"), "--properties-file", str(conf_file),
            "--class", SERVER_CLASS if protocol == "connect" else HIVE2_SERVER_CLASS, "spark-internal"]
    for key, value in (hive or {}).items():
        argv += ["--hiveconf", f"{key}={value}"]
    return argv


def conf_name(protocol: str) -> str:
    return "sql-server.conf" if protocol == "connect" else f"sql-server-{protocol}.conf"


def write_conf(settings: Settings, conf: dict[str, str], name: str = "sql-server.conf") -> Path:
    folder = settings.home / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name
    # Created 0600 before anything is written: the file holds the S3 and catalog secrets.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        for key, value in sorted(conf.items()):
            # Java properties: backslashes and line breaks escaped; values here are single-line.
            out.write(f"{key} {value.replace(chr(92), chr(92) * 2)}\n")
    os.chmod(path, 0o600)
    return path


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    token = settings.sql_token or None
    protocol = args.protocol
    port = DEFAULT_PORTS[protocol] if args.port is None else args.port
    if not _loopback(args.host) and not token:
        return fail("sql-server", f"--host {args.host} is reachable from other machines: set {TOKEN_ENV} "
                                  f"(clients then connect with {CLIENTS[protocol]})")
    if not 0 < port < 65536:
        return fail("sql-server", f"--port {port} is not a port number")
    from citylake.core.spark import MissingJars

    try:
        conf = server_conf(settings, args.host, port, token, protocol)
    except MissingJars as exc:
        return fail("sql-server", exc)
    hive = hive_conf(settings, args.host, port, token) if protocol == "hive2" else None
    if args.print_conf:
        for key, value in sorted(conf.items()):
            print(f"{key}={_hidden(key, value)}")
        print(" ".join(command(Path("<conf>"), protocol, hive)))
        return 0
    path = write_conf(settings, conf, conf_name(protocol))
    argv = command(path, protocol, hive)
    if protocol == "connect":
        print(f"citylake sql-server: Spark Connect on {args.host}:{port} "
              f"(catalog {settings.catalog_name}; clients: sc://{args.host}:{port}/"
              f"{';token=…' if token else ''})", flush=True)
    else:
        print(f"citylake sql-server: HiveServer2 on {args.host}:{port} "
              f"(catalog {settings.catalog_name}; clients: jdbc:hive2://{args.host}:{port}/<namespace>"
              f"{', the token as password' if token else ', no password'})", flush=True)
    env = dict(os.environ, SPARK_HOME=str(spark_home()))
    # The JVM takes this process's place: a supervisor's stop signal reaches Spark directly.
    os.execve(argv[0], argv, env)
    return 0  # not reached
