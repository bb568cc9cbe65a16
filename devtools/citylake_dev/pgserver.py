"""A throw-away PostgreSQL server on loopback, for tests (Debian's ``postgresql`` binaries).

``initdb`` into a temporary folder, ``pg_ctl start`` on a free 127.0.0.1 port with the socket in
that folder, trust authentication for the ``postgres`` superuser, and a ``test`` database. Nothing
else on the machine is touched and several runs can share a machine. PostgreSQL refuses to run as
root, so as root the folder is handed to the ``postgres`` system user (created by the Debian
package) and the server runs as that user.

Usage::

    server = PostgresServer.start(tmp_dir)
    engine = create_engine(server.url)     # postgresql+psycopg2://postgres@127.0.0.1:<port>/test
    server.stop()
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DATABASE = "test"
SYSTEM_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The server could not be started; the message says why and how to fix it."""


def find_bin_dir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: $CITYLAKE_PG_BIN, Debian's newest version, or PATH."""
    explicit = os.environ.get("CITYLAKE_PG_BIN")
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    data_dir: Path
    port: int
    bin_dir: Path
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@{HOST}:{self.port}/{DATABASE}"

    @classmethod
    def start(cls, base: Path, timeout: float = 60.0) -> PostgresServer:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable("PostgreSQL binaries not found (Debian: apt-get install postgresql; "
                                      "or set CITYLAKE_PG_BIN to the folder holding initdb and pg_ctl)")
        run_as = SYSTEM_USER if os.geteuid() == 0 else None
        base = Path(base)
        data = base / "data"
        base.mkdir(parents=True, exist_ok=True)
        if run_as:
            try:
                shutil.chown(base, user=run_as)
            except (LookupError, PermissionError) as exc:
                raise PostgresUnavailable(f"running as root, and the '{run_as}' user is missing: {exc}") from None
        server = cls(data, _free_port(), bin_dir, run_as)
        server._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C")
        options = f"-c listen_addresses={HOST} -p {server.port} -k {base} -c fsync=off"
        server._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "server.log"), "-w",
                    "-t", str(int(timeout)), "start")
        deadline = time.monotonic() + timeout
        while True:
            try:
                server._psql("postgres", f"CREATE DATABASE {DATABASE}")
                break
            except subprocess.CalledProcessError as exc:
                if time.monotonic() > deadline:
                    server.stop()
                    raise PostgresUnavailable(f"PostgreSQL did not accept connections: see {base / 'server.log'}") from exc
                time.sleep(0.3)
        return server

    def _command(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run(self._command(tool, *args), capture_output=True, text=True)
        if proc.returncode:
            raise PostgresUnavailable(f"{tool} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")

    def _psql(self, database: str, sql: str) -> None:
        psql = self.bin_dir / "psql"
        cmd = [str(psql if psql.exists() else "psql"), "-h", HOST, "-p", str(self.port), "-U", "postgres",
               "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql]
        subprocess.run(cmd, check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(self._command("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop"),
                       capture_output=True)
