"""`citylake sql-server`: a Spark Connect endpoint over the lake's catalog, for BI tools and notebooks.

    citylake sql-server                        # 127.0.0.1:15002, no token needed on loopback
    CITYLAKE_SQL_TOKEN=… citylake sql-server --host 0.0.0.0 --port 15002

It runs Spark's own Spark Connect server (the class ``SparkConnectServer`` of the Spark that pyspark
brings) with the jobs' configuration (:func:`citylake.core.spark.spark_conf`: the Iceberg catalog,
its jars, S3) and the catalog as the default one, so a client writes ``scjg.enterprise_registration``
as ``citylake query`` does. Clients connect with ``sc://HOST:PORT/;token=TOKEN`` (pyspark
``SparkSession.builder.remote(…)``, or the Spark Connect JDBC driver with ``jdbc:sc://…``).

Who sees what is decided by the identity the server runs as, not by the server: in production
(docker-compose.yml, service ``sql-server``) it holds the ``analyst`` storage identity of
:mod:`citylake.core.access` — read-only, curated and base-library table folders only — so raw,
standardized and quarantine data cannot be read through it whatever SQL a client sends. A client can
send code as well as SQL, so the token must be kept like a password.

The settings (S3 keys, catalog password, token) go to Spark in a properties file readable only by the
owner (``$CITYLAKE_HOME/secrets/sql-server.conf``), never on the command line where ``ps`` shows them.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from pathlib import Path

from citylake.core.settings import ENV, Settings
from citylake.drivers.cli.common import fail

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002  # Spark Connect's own default
TOKEN_ENV = ENV["sql_token"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1); any other needs CITYLAKE_SQL_TOKEN")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--print-conf", action="store_true",
                        help="print the Spark settings (secrets hidden) and the command, and exit")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_conf(settings: Settings, host: str, port: int, token: str | None) -> dict[str, str]:
    """Spark's settings for the endpoint: the jobs' own, the catalog as default, the address, the token."""
    from citylake.core.spark import spark_conf

    conf = spark_conf(settings)
    conf.update({
        "spark.master": settings.spark_master,
        "spark.app.name": "citylake-sql-server",
        "spark.sql.defaultCatalog": settings.catalog_name,
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
    })
    if token:
        conf["spark.connect.authenticate.token"] = token
    return conf


def _hidden(key: str, value: str) -> str:
    secret = ("secret", "password", "token")
    return "***" if any(s in key.lower() for s in secret) else value


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def command(conf_file: Path) -> list[str]:
    return [str(spark_home() / "bin" / "spark-submit"), "--properties-file", str(conf_file),
            "--class", SERVER_CLASS, "spark-internal"]


def write_conf(settings: Settings, conf: dict[str, str]) -> Path:
    folder = settings.home / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "sql-server.conf"
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
    if not _loopback(args.host) and not token:
        return fail("sql-server", f"--host {args.host} is reachable from other machines: set {TOKEN_ENV} "
                                  f"(clients then connect with sc://HOST:PORT/;token=…)")
    if not 0 < args.port < 65536:
        return fail("sql-server", f"--port {args.port} is not a port number")
    from citylake.core.spark import MissingJars

    try:
        conf = server_conf(settings, args.host, args.port, token)
    except MissingJars as exc:
        return fail("sql-server", exc)
    if args.print_conf:
        for key, value in sorted(conf.items()):
            print(f"{key}={_hidden(key, value)}")
        print(" ".join(command(Path("<conf>"))))
        return 0
    path = write_conf(settings, conf)
    argv = command(path)
    print(f"citylake sql-server: Spark Connect on {args.host}:{args.port} "
          f"(catalog {settings.catalog_name}; clients: sc://{args.host}:{args.port}/"
          f"{';token=…' if token else ''})", flush=True)
    env = dict(os.environ, SPARK_HOME=str(spark_home()))
    # The JVM takes this process's place: a supervisor's stop signal reaches Spark directly.
    os.execve(argv[0], argv, env)
    return 0  # not reached
