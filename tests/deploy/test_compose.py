"""docker-compose.yml: it parses, every service deploy/README.md describes exists, and the wiring
(health checks, dependencies, secrets from .env, versions, department users) is consistent.

The stack itself cannot run here (no Docker engine); what is verified only inside it is listed in
deploy/README.md. `docker-compose config` needs the Debian package docker-compose (or the Docker
CLI's compose plugin); without it those tests skip, the static checks still run.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from citylake.core import access
from citylake.core.registry import load_registrations
from citylake.core.settings import REPO_ROOT, Settings
from citylake.core.spark import spark_conf
from citylake_dev.testing import service_unavailable

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DEPLOY_README = REPO_ROOT / "deploy" / "README.md"
ONE_SHOTS = {"minio-init", "airflow-init"}
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
}
VAR_RE = re.compile(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)")  # $${X} is escaped
SECRET_NAME_RE = re.compile(
    r"PASSWORD|SECRET|FERNET|ACCESS_KEY|SQL_ALCHEMY_CONN|DIRECTORY_URL|CATALOG_URI|RSJ_SOURCE_DB"
)
POM = REPO_ROOT / "deploy" / "spark" / "pom.xml"
SPARK_DOCKERFILE = "deploy/spark/Dockerfile"
AIRFLOW_DOCKERFILE = "deploy/airflow/Dockerfile"
CHECK_JARS = REPO_ROOT / "deploy" / "spark" / "check-jars.sh"
# The resolve step both images run on the manifest (the command scripts/fetch-jars.sh runs for `make venv`).
MVN_RE = re.compile(r"mvn -q -B -f (\S+) dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=(\S+)")
# An apache/spark image is published some time after the Spark release, and pyspark may be pinned
# before it: pinned pyspark version -> the newest apache/spark image of the same minor line confirmed
# to exist when pyspark was pinned (deploy/spark/Dockerfile and deploy/README.md say so). Remove the
# entry, and set the Dockerfile's SPARK_IMAGE to the pinned version, once that image is published.
IMAGE_FALLBACK = {"4.1.4": "4.1.2"}


# ---- helpers -----------------------------------------------------------------------------------
def readme_services() -> list[str]:
    """Service names from the `## Services` table of deploy/README.md (first column, in backticks)."""
    text = DEPLOY_README.read_text(encoding="utf-8")
    section = text.split("\n## Services", 1)[1].split("\n## ", 1)[0]
    names = re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|", section, flags=re.M)
    assert names, "no service table found in deploy/README.md under '## Services'"
    return names


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def compose_static() -> dict:
    """docker-compose.yml as YAML (anchors and merge keys resolved by PyYAML)."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def run_config(env_file: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = compose_command()
    if cmd is None:
        service_unavailable(
            "docker-compose not installed (Debian: apt-get install docker-compose); "
            "the compose file is only checked statically"
        )
    # a clean environment: the developer's shell must not fill in variables .env.example lacks
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [*cmd, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "--project-directory", str(REPO_ROOT), "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose_config(tmp_path_factory) -> dict:
    result = run_config(ENV_EXAMPLE, tmp_path_factory.mktemp("compose-home"))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


# ---- docker-compose config ---------------------------------------------------------------------
def test_compose_config_succeeds_and_has_every_readme_service(compose_config):
    services = set(compose_config["services"])
    missing = [s for s in readme_services() if s not in services]
    assert not missing, f"deploy/README.md mentions services docker-compose.yml lacks: {missing}"
    undocumented = services - set(readme_services())
    assert not undocumented, f"services not described in deploy/README.md: {sorted(undocumented)}"


def test_compose_refuses_to_start_without_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run_config(empty, tmp_path)
    assert result.returncode != 0
    assert "in .env" in result.stderr  # the ${VAR:?set VAR in .env} message


def test_rendered_airflow_environment_builds_the_s3a_spark_config(compose_config, monkeypatch, tmp_path):
    env = compose_config["services"]["airflow-scheduler"]["environment"]
    for key in [k for k in os.environ if k.startswith("CITYLAKE_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("CITYLAKE_"):
            monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("CITYLAKE_HOME", str(tmp_path))
    settings = Settings.from_env()
    assert settings.lake_uri == "s3://lake"
    assert settings.directory_url.startswith("postgresql+psycopg2://citylake:")
    assert settings.catalog_uri.startswith("postgresql+psycopg2://citylake:")
    assert settings.catalog_uri.endswith("@postgres:5432/citylake_catalog")
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.access.key"] == env_example()["CITYLAKE_S3_ACCESS_KEY"]
    # the Iceberg catalog: JDBC on the catalog database, tables under <lake>/warehouse with S3FileIO
    catalog = f"spark.sql.catalog.{settings.catalog_name}"
    assert conf[f"{catalog}.uri"] == "jdbc:postgresql://postgres:5432/citylake_catalog"
    assert conf[f"{catalog}.jdbc.user"] == "citylake"
    assert conf[f"{catalog}.warehouse"] == "s3://lake/warehouse"
    assert conf[f"{catalog}.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf[f"{catalog}.s3.endpoint"] == "http://minio:9000"
    assert conf[f"{catalog}.s3.path-style-access"] == "true"


# ---- static checks of docker-compose.yml -------------------------------------------------------
def test_readme_services_exist_in_the_compose_file(compose_static):
    assert set(readme_services()) == set(compose_static["services"])


def test_required_services(compose_static):
    services = compose_static["services"]
    assert {
        "minio",
        "minio-init",
        "postgres",
        "spark-master",
        "spark-worker",
        "directory-site",
    } | AIRFLOW_SERVICES <= set(services)
    assert services["airflow-api-server"]["command"] == ["api-server"]
    assert services["airflow-scheduler"]["command"] == ["scheduler"]
    assert services["airflow-dag-processor"]["command"] == ["dag-processor"]
    assert services["airflow-triggerer"]["command"] == ["triggerer"]
    assert services["directory-site"]["image"].startswith("nginx:") and "alpine" in services["directory-site"]["image"]


def test_long_running_services_have_health_checks_and_one_shots_do_not_restart(compose_static):
    for name, svc in compose_static["services"].items():
        if name in ONE_SHOTS:
            assert svc.get("restart") == "no", name
        else:
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
            assert svc.get("restart") == "unless-stopped", name


def test_dependencies_wait_for_health_or_completion(compose_static):
    services = compose_static["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: use the long depends_on syntax with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if dep in ONE_SHOTS:
                assert spec == {"condition": "service_completed_successfully"}, (name, dep)
            else:
                assert spec == {"condition": "service_healthy"}, (name, dep)
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert {"postgres", "airflow-init", "minio-init"} <= set(deps), name
    assert set(services["airflow-init"]["depends_on"]) == {"postgres"}
    assert "spark-master" in services["airflow-scheduler"]["depends_on"]
    assert "spark-master" in services["spark-worker"]["depends_on"]
    assert "minio" in services["minio-init"]["depends_on"]


def test_project_environment(compose_static):
    for name in AIRFLOW_SERVICES:
        env = compose_static["services"][name]["environment"]
        assert env["CITYLAKE_LAKE_URI"] == "s3://${CITYLAKE_BUCKET:-lake}"
        assert env["CITYLAKE_S3_ENDPOINT"] == "http://minio:9000"
        assert env["CITYLAKE_DIRECTORY_URL"].startswith("postgresql+psycopg2://citylake:${CITYLAKE_DB_PASSWORD")
        assert env["CITYLAKE_DIRECTORY_URL"].endswith("@postgres:5432/citylake_directory")
        assert env["CITYLAKE_CATALOG_URI"].startswith("postgresql+psycopg2://citylake:${CITYLAKE_DB_PASSWORD")
        assert env["CITYLAKE_CATALOG_URI"].endswith("@postgres:5432/citylake_catalog")
        assert env["CITYLAKE_SPARK_MASTER"] == "spark://spark-master:7077"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow")
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        conn = json.loads(env["AIRFLOW_CONN_SPARK_DEFAULT"])
        assert f"{conn['host']}:{conn['port']}" == env["CITYLAKE_SPARK_MASTER"]
        assert conn["extra"]["deploy-mode"] == "client"


def test_every_sql_source_has_a_connection(compose_static):
    env = compose_static["services"]["airflow-scheduler"]["environment"]
    for reg in load_registrations(REPO_ROOT / "registrations"):
        if reg.source.kind == "sql":
            assert f"AIRFLOW_CONN_{reg.source.conn_id.upper()}" in env, reg.resource


def test_no_secret_is_written_into_the_compose_file(compose_static):
    for name, svc in compose_static["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if key.endswith("_ACCESS_KEY") and value in (access.ANALYST, access.STEWARD):
                continue  # a user name that deploy/minio/init.sh creates, not a secret
            if SECRET_NAME_RE.search(key):
                assert "${" in str(value), f"{name}: {key} must come from .env, not be written in docker-compose.yml"


# The SQL endpoints: Spark Connect (sql-server) and HiveServer2 (bi-server), both `citylake sql-server`.
SQL_ENDPOINTS = {
    "sql-server": (["citylake", "sql-server", "--host", "0.0.0.0", "--port", "15002"], 15002),
    "bi-server": (["citylake", "sql-server", "--protocol", "hive2", "--host", "0.0.0.0", "--port", "10000"], 10000),
}


@pytest.mark.parametrize("service", sorted(SQL_ENDPOINTS))
def test_the_sql_endpoint_runs_as_the_read_only_analyst(compose_static, service):
    svc = compose_static["services"][service]
    entrypoint, port = SQL_ENDPOINTS[service]
    assert svc["image"] == compose_static["services"]["sql-server"]["image"]
    assert svc["entrypoint"] == entrypoint
    assert svc["ports"] == [f"${{CITYLAKE_BIND_ADDRESS:-127.0.0.1}}:{port}:{port}"]
    assert str(port) in " ".join(svc["healthcheck"]["test"])
    assert svc["environment"] == compose_static["services"]["sql-server"]["environment"]  # the same identity
    env = svc["environment"]
    assert env["CITYLAKE_S3_ACCESS_KEY"] == access.ANALYST
    assert env["CITYLAKE_S3_SECRET_KEY"].startswith(f"${{{access.ANALYST_SECRET_ENV}:?")
    assert env["CITYLAKE_CATALOG_URI"].startswith("postgresql+psycopg2://citylake_reader:")
    assert env["CITYLAKE_SQL_TOKEN"].startswith("${CITYLAKE_SQL_TOKEN:?")
    assert "CITYLAKE_RECORD_KEY_SECRET" not in env and "CITYLAKE_DIRECTORY_URL" not in env
    minio_env = compose_static["services"]["minio-init"]["environment"]
    assert minio_env[access.ANALYST_SECRET_ENV].startswith(f"${{{access.ANALYST_SECRET_ENV}:?")
    sql = (REPO_ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    assert "CREATE ROLE citylake_reader LOGIN" in sql
    assert "ALTER DEFAULT PRIVILEGES FOR ROLE citylake IN SCHEMA public GRANT SELECT ON TABLES TO citylake_reader" in sql
    # it may read, nothing more: every grant to it is CONNECT, USAGE or SELECT
    grants = re.findall(r"GRANT (\w+) ON [^;]* TO citylake_reader;", sql)
    assert sorted(set(grants)) == ["CONNECT", "SELECT", "USAGE"], grants


def test_the_data_service_runs_as_the_steward_in_production_mode(compose_static, compose_config, monkeypatch):
    """`citylake serve` like the SQL endpoints (same image, catalog read-only), but as the steward (a
    grant may show personal fields in the clear, which only the standardized tables hold), with the
    directory database for its keys, requests and audit, and refusing placeholder secrets."""
    services = compose_static["services"]
    svc = services["data-service"]
    assert svc["image"] == services["sql-server"]["image"]
    assert svc["entrypoint"] == ["citylake", "serve", "--host", "0.0.0.0", "--port", "8700"]
    assert svc["ports"] == ["${CITYLAKE_BIND_ADDRESS:-127.0.0.1}:8700:8700"]
    assert "http://127.0.0.1:8700/api/v1/catalog" in svc["healthcheck"]["test"]
    env = svc["environment"]
    assert env["CITYLAKE_ENV"] == "production"
    assert env["CITYLAKE_S3_ACCESS_KEY"] == access.STEWARD
    assert env["CITYLAKE_S3_SECRET_KEY"].startswith(f"${{{access.STEWARD_SECRET_ENV}:?")
    assert access.role(access.STEWARD).unmasked
    assert env["CITYLAKE_CATALOG_URI"] == services["sql-server"]["environment"]["CITYLAKE_CATALOG_URI"]
    airflow = services["airflow-scheduler"]["environment"]
    for key in ("CITYLAKE_DIRECTORY_URL", "CITYLAKE_RECORD_KEY_SECRET", "CITYLAKE_LAKE_URI", "CITYLAKE_S3_ENDPOINT",
                "CITYLAKE_RESOURCES_DIR", "CITYLAKE_HOME", "CITYLAKE_SERVICE_URL"):
        assert env[key] == airflow[key], key  # the publisher's directory, lake and hashing secret
    assert set(svc["depends_on"]) == {"postgres", "minio-init"}
    # as rendered with .env.example: the settings the service reads, and the production check refuses
    # every placeholder (citylake/drivers/cli/serve.py)
    from citylake.drivers.cli.serve import production_problems

    for key in [k for k in os.environ if k.startswith(("CITYLAKE_", "AWS_"))]:
        monkeypatch.delenv(key)
    for key, value in compose_config["services"]["data-service"]["environment"].items():
        monkeypatch.setenv(key, str(value))
    settings = Settings.from_env()
    assert settings.is_production and settings.s3.access_key == access.STEWARD
    assert (settings.service_rate_per_minute, settings.service_anon_rate_per_minute) == (600, 60)
    problems = " ".join(production_problems(settings))
    for var in ("CITYLAKE_RECORD_KEY_SECRET", "CITYLAKE_S3_SECRET_KEY", "CITYLAKE_DIRECTORY_URL",
                "CITYLAKE_CATALOG_URI"):
        assert f"{var} still holds the placeholder" in problems, var


def test_env_example_defines_every_variable_and_holds_no_secret(compose_static):
    defined = env_example()
    used = set(VAR_RE.findall(COMPOSE_FILE.read_text(encoding="utf-8")))
    assert used - set(defined) == set(), "variables docker-compose.yml uses but .env.example lacks"
    for key, value in defined.items():
        if SECRET_NAME_RE.search(key) and key != "CITYLAKE_S3_ACCESS_KEY":
            assert "change-me" in value, f".env.example: {key} must be a change-me placeholder"


def test_every_department_has_a_liaison_secret(compose_static):
    minio_env = compose_static["services"]["minio-init"]["environment"]
    defined = env_example()
    expected = {access.liaison_secret_env(d) for d in access.departments()}
    in_compose = {k for k in minio_env if k.startswith("CITYLAKE_LIAISON_")}
    in_example = {k for k in defined if k.startswith("CITYLAKE_LIAISON_")}
    assert in_compose == expected, "minio-init environment vs departments (registrations/<dept>)"
    assert in_example == expected, ".env.example vs departments (registrations/<dept>)"


def test_init_steps_are_mounted(compose_static):
    services = compose_static["services"]
    assert services["minio-init"]["entrypoint"] == ["/bin/sh", "/deploy/minio/init.sh"]
    assert "./deploy/minio:/deploy/minio:ro" in services["minio-init"]["volumes"]
    assert any(
        v.startswith("./deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/")
        for v in services["postgres"]["volumes"]
    )
    assert services["airflow-init"]["entrypoint"] == ["/bin/bash", "/opt/citylake/deploy/airflow/init.sh"]
    init = (REPO_ROOT / "deploy" / "airflow" / "init.sh").read_text()
    assert "airflow db migrate" in init and "airflow users create" in init and "--role Admin" in init
    sql = (REPO_ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    assert "CREATE DATABASE airflow OWNER airflow" in sql
    assert "CREATE DATABASE citylake_directory OWNER citylake" in sql
    assert "CREATE DATABASE citylake_catalog OWNER citylake" in sql


def test_postgres_health_check_opens_every_database_the_init_script_creates(compose_static):
    sql = (REPO_ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    created = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    assert set(created) == {"airflow", "citylake_directory", "citylake_catalog", "marquez"}
    check = " ".join(compose_static["services"]["postgres"]["healthcheck"]["test"])
    opened = {db: user for user, db in re.findall(r"-U (\w+) -d (\w+)", check)}
    assert opened == created, "the postgres health check should log into each database as its owner"
    # the URLs the services use name databases the init script creates, as their owners
    env = compose_static["services"]["airflow-scheduler"]["environment"]
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "CITYLAKE_DIRECTORY_URL", "CITYLAKE_CATALOG_URI"):
        m = re.match(r"^postgresql\+psycopg2://(\w+):.*@postgres:5432/(\w+)$", env[key])
        assert m, key
        user, db = m.groups()
        assert created.get(db) == user, key


def test_directory_site_serves_what_publish_writes(compose_static):
    services = compose_static["services"]
    home = services["airflow-scheduler"]["environment"]["CITYLAKE_HOME"]
    assert f"directory:{home}/directory" in services["airflow-scheduler"]["volumes"]
    assert "directory:/usr/share/nginx/html:ro" in services["directory-site"]["volumes"]


def test_the_internal_directory_is_served_only_through_the_login(compose_static):
    """nginx no longer serves the pages as files: the internal site (every resource, sample rows) goes
    through the data service's login; only the open DCAT export is a file."""
    conf = (REPO_ROOT / "deploy" / "nginx" / "default.conf").read_text()
    served = re.findall(r"^\s*location\s+(=?\s*\S+)\s*\{", conf, re.M)
    assert served == ["= /healthz", "= /open-dcat.jsonld", "/"]
    assert "server data-service:8700;" in conf and "proxy_pass http://citylake_service;" in conf
    assert "try_files" not in conf and "autoindex" not in conf
    site = compose_static["services"]["directory-site"]
    assert site["depends_on"]["data-service"]["condition"] == "service_healthy"
    service = compose_static["services"]["data-service"]
    assert service["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert "directory:/opt/citylake/var/directory:ro" in service["volumes"]


def test_images_are_built_from_the_deploy_dockerfiles(compose_static):
    services = compose_static["services"]
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"] == {"context": ".", "dockerfile": "deploy/airflow/Dockerfile"}
    for name in ("spark-master", "spark-worker"):
        assert services[name]["build"] == {"context": ".", "dockerfile": "deploy/spark/Dockerfile"}
    for dockerfile in ("deploy/airflow/Dockerfile", "deploy/spark/Dockerfile"):
        assert (REPO_ROOT / dockerfile).is_file()
    ignore = (REPO_ROOT / "deploy/airflow/Dockerfile.dockerignore").read_text().split()
    assert ".env" in ignore and ".venv" in ignore


# ---- versions ----------------------------------------------------------------------------------
def _arg(dockerfile: str, name: str) -> str:
    m = re.search(rf"^ARG {name}=(\S+)$", (REPO_ROOT / dockerfile).read_text(), flags=re.M)
    assert m, f"{dockerfile}: ARG {name} not found"
    return m.group(1)


def _pin(package: str) -> str:
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        m = re.match(rf"^{re.escape(package)}(\[[^\]]*\])?==(\S+)$", dep)
        if m:
            return m.group(2)
    raise AssertionError(f"{package} is not pinned in pyproject.toml")


def _pyspark_jars() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "jars"


def _pyspark_spark() -> tuple[str, str, str]:
    """(Spark version, Scala version, Hadoop version) of the Spark inside the installed pyspark."""
    jars = _pyspark_jars()
    core = sorted(jars.glob("spark-core_*.jar"))
    api = sorted(jars.glob("hadoop-client-api-*.jar"))
    assert core and api, f"no spark-core / hadoop-client-api jar in {jars}"
    scala, spark = core[0].stem.removeprefix("spark-core_").split("-", 1)
    return spark, scala, api[0].stem.removeprefix("hadoop-client-api-")


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _pom() -> tuple[dict[str, str], dict[str, str]]:
    """The manifest's properties and its dependencies (artifactId -> version, properties resolved)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(POM).getroot()
    props = {el.tag.split("}", 1)[1]: el.text.strip() for el in root.find("m:properties", ns)}
    deps = {}
    for dep in root.findall("m:dependencies/m:dependency", ns):
        version = dep.findtext("m:version", namespaces=ns).strip()
        version = re.sub(r"\$\{([^}]+)\}", lambda m: props[m.group(1)], version)
        deps[dep.findtext("m:artifactId", namespaces=ns).strip()] = version
    return props, deps


def test_spark_image_is_the_pinned_pyspark_version():
    pyspark = _pin("pyspark")
    assert importlib.metadata.version("pyspark") == pyspark
    image = _arg(SPARK_DOCKERFILE, "SPARK_IMAGE")
    m = re.fullmatch(r"apache/spark:(\d+\.\d+\.\d+)-scala(\d+\.\d+)-java(\d+)-python3-ubuntu", image)
    assert m, f"{SPARK_DOCKERFILE}: SPARK_IMAGE {image} is not an official apache/spark python3 image"
    version, scala, java = m.groups()
    # the pinned version itself, or the one fallback recorded for it (same minor line)
    assert version == IMAGE_FALLBACK.get(pyspark, pyspark)
    assert _minor(version) == _minor(pyspark)
    if version != pyspark:
        assert f"apache/spark:{pyspark}-" in (REPO_ROOT / SPARK_DOCKERFILE).read_text(), (
            f"{SPARK_DOCKERFILE} must say why it is not apache/spark:{pyspark}"
        )
    spark, pyspark_scala, _ = _pyspark_spark()
    assert spark == pyspark
    assert scala == pyspark_scala
    assert java == "17"


def test_airflow_image_is_the_pinned_airflow_version():
    airflow = _pin("apache-airflow")
    assert _arg(AIRFLOW_DOCKERFILE, "AIRFLOW_IMAGE") == f"apache/airflow:{airflow}-python3.11"
    assert _arg(AIRFLOW_DOCKERFILE, "AIRFLOW_VERSION") == airflow
    assert _arg(AIRFLOW_DOCKERFILE, "JAVA_IMAGE").startswith("eclipse-temurin:17")


def test_the_manifest_fits_the_pinned_pyspark():
    """deploy/spark/pom.xml: hadoop-aws of the Hadoop inside pyspark, the Iceberg runtime for its
    Spark line and Scala version."""
    spark, scala, hadoop = _pyspark_spark()
    props, deps = _pom()
    assert props["hadoop.version"] == hadoop
    assert deps["hadoop-aws"] == hadoop
    runtimes = [a for a in deps if a.startswith("iceberg-spark-runtime-")]
    assert runtimes == [f"iceberg-spark-runtime-{_minor(spark)}_{scala}"]
    assert deps[runtimes[0]] == deps["iceberg-aws-bundle"] == props["iceberg.version"]
    assert {"sqlite-jdbc", "postgresql"} <= set(deps)  # the catalog database, embedded and in production
    assert "bundle" not in deps  # the 640 MB AWS SDK bundle: one SDK, the one inside iceberg-aws-bundle


def test_both_images_resolve_the_manifest():
    repo_pom = POM.relative_to(REPO_ROOT).as_posix()
    for dockerfile in (SPARK_DOCKERFILE, AIRFLOW_DOCKERFILE):
        text = (REPO_ROOT / dockerfile).read_text()
        assert re.search(rf"^COPY {re.escape(repo_pom)}( |$)", text, flags=re.M), dockerfile
        resolves = MVN_RE.findall(text)
        assert len(resolves) == 1, f"{dockerfile}: one mvn copy-dependencies of the manifest"
        assert re.search(r"^FROM \$\{MAVEN_IMAGE\} AS jars$", text, flags=re.M), dockerfile
        assert "check-jars.sh" in text, f"{dockerfile}: the resolved jars are not checked against Spark"
    assert _arg(SPARK_DOCKERFILE, "MAVEN_IMAGE") == _arg(AIRFLOW_DOCKERFILE, "MAVEN_IMAGE")
    assert _arg(SPARK_DOCKERFILE, "MAVEN_IMAGE").startswith("maven:3-eclipse-temurin-17")
    # the same command as `make venv`
    fetch = (REPO_ROOT / "scripts" / "fetch-jars.sh").read_text()
    assert "dependency:copy-dependencies" in fetch and "-DincludeScope=runtime" in fetch and repo_pom in fetch


def test_spark_image_puts_the_jars_into_sparks_jars_folder():
    text = (REPO_ROOT / SPARK_DOCKERFILE).read_text()
    ((_, out),) = MVN_RE.findall(text)
    assert re.search(rf"^COPY --from=jars {re.escape(out)}/? /opt/spark/jars/?$", text, flags=re.M)


def test_airflow_image_names_its_jars_folder_in_citylake_spark_jars():
    text = (REPO_ROOT / AIRFLOW_DOCKERFILE).read_text()
    ((_, out),) = MVN_RE.findall(text)
    m = re.search(rf"^COPY --from=jars {re.escape(out)}/? (\S+?)/?$", text, flags=re.M)
    assert m, f"{AIRFLOW_DOCKERFILE}: the resolved jars are not copied into the image"
    folder = m.group(1)
    assert re.search(rf"^\s*(ENV )?CITYLAKE_SPARK_JARS={re.escape(folder)}(\s*\\)?$", text, flags=re.M), (
        f"{AIRFLOW_DOCKERFILE}: ENV CITYLAKE_SPARK_JARS must name {folder}"
    )


def test_airflow_image_reinstalls_pyspark_after_the_project():
    """As `make venv` does: the Spark provider's pyspark-client writes into pyspark/, pyspark must win."""
    text = (REPO_ROOT / AIRFLOW_DOCKERFILE).read_text()
    project = text.index("/opt/citylake \\")  # pip install ... /opt/citylake
    reinstall = text.index("--force-reinstall --no-deps")
    assert project < reinstall
    assert "pyspark==$(python -c 'import importlib.metadata as m; print(m.version(\"pyspark\"))')" in text[reinstall:]
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "--force-reinstall --no-deps" in makefile  # the recipe this mirrors


def test_the_spark_images_build_context_lets_in_what_it_copies():
    """The Spark image's dockerignore lets in only named files: each file its Dockerfile COPYs."""
    text = (REPO_ROOT / SPARK_DOCKERFILE).read_text()
    ignore = (REPO_ROOT / "deploy/spark/Dockerfile.dockerignore").read_text().split()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore
    copied = set()
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, flags=re.M):
        *sources, _ = line.split()
        copied.update(sources)
    assert copied == allowed
    assert all((REPO_ROOT / path).is_file() for path in copied)


def test_nothing_names_the_removed_ivy_script():
    assert not (REPO_ROOT / "deploy/spark/add-s3a-jars.sh").exists()
    files = [COMPOSE_FILE, *sorted(p for p in (REPO_ROOT / "deploy").rglob("*") if p.is_file())]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "add-s3a-jars" not in text, path
        if path.name.startswith("Dockerfile"):
            assert "--packages" not in text and "ivy" not in text.lower(), path


# ---- scripts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "script,shell",
    [
        ("deploy/minio/init.sh", "sh"),
        ("deploy/spark/check-jars.sh", "sh"),
        ("deploy/airflow/init.sh", "bash"),
        ("deploy/postgres/init-databases.sh", "bash"),
    ],
)
def test_scripts_are_valid_and_executable(script, shell):
    path = REPO_ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def check_jars(spark: Path, manifest: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(CHECK_JARS), str(spark), str(manifest)], capture_output=True, text=True)


def test_check_jars_passes_the_manifest_make_venv_fetched():
    """The jars `make venv` fetched (scripts/fetch-jars.sh) against the Spark inside the installed pyspark."""
    fetched = REPO_ROOT / ".venv" / "share" / "citylake" / "jars"
    if not any(fetched.glob("iceberg-spark-runtime-*.jar")):
        pytest.skip(f"no jars in {fetched}: run `make venv` (scripts/fetch-jars.sh)")
    result = check_jars(_pyspark_jars(), fetched)
    assert result.returncode == 0, result.stderr + result.stdout
    spark, scala, hadoop = _pyspark_spark()
    assert f"Spark {spark} (Scala {scala}, Hadoop {hadoop})" in result.stdout


@pytest.fixture
def fake_jars(tmp_path):
    """A Spark 4.1.2 jars folder (Scala 2.13, Hadoop 3.4.2) and a manifest folder that fits it."""
    spark, manifest = tmp_path / "spark", tmp_path / "manifest"
    spark.mkdir()
    manifest.mkdir()
    for name in (
        "spark-core_2.13-4.1.2",
        "hadoop-client-api-3.4.2",
        "hadoop-client-runtime-3.4.2",
        "httpclient-4.5.14",
        "slf4j-api-2.0.17",
        "hive-shims-0.23-2.3.10",
    ):
        (spark / f"{name}.jar").touch()
    for name in (
        "iceberg-spark-runtime-4.1_2.13-1.12.0",
        "iceberg-aws-bundle-1.12.0",
        "hadoop-aws-3.4.2",
        "s3-transfer-manager-2.54.17",
        "wildfly-openssl-2.1.4.Final",
        "postgresql-42.7.14",
    ):
        (manifest / f"{name}.jar").touch()
    (manifest / "pom.xml").touch()
    return spark, manifest


def test_check_jars_passes_a_manifest_that_fits(fake_jars):
    result = check_jars(*fake_jars)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Spark 4.1.2 (Scala 2.13, Hadoop 3.4.2)" in result.stdout


def test_check_jars_refuses_hadoop_aws_of_another_hadoop(fake_jars):
    spark, manifest = fake_jars
    (manifest / "hadoop-aws-3.4.2.jar").rename(manifest / "hadoop-aws-3.4.1.jar")
    result = check_jars(spark, manifest)
    assert result.returncode != 0
    assert "hadoop-aws-3.4.1.jar in the manifest, but Spark bundles Hadoop 3.4.2" in result.stderr


def test_check_jars_refuses_an_iceberg_runtime_for_another_spark(fake_jars):
    spark, manifest = fake_jars
    (manifest / "iceberg-spark-runtime-4.1_2.13-1.12.0.jar").rename(
        manifest / "iceberg-spark-runtime-4.0_2.13-1.12.0.jar"
    )
    result = check_jars(spark, manifest)
    assert result.returncode != 0
    assert "not the Iceberg runtime for Spark 4.1 / Scala 2.13" in result.stderr


def test_check_jars_refuses_a_jar_spark_already_ships(fake_jars):
    spark, manifest = fake_jars
    (manifest / "httpclient-4.5.13.jar").touch()
    result = check_jars(spark, manifest)
    assert result.returncode != 0
    assert "httpclient-4.5.13.jar duplicates Spark's own httpclient-4.5.14.jar" in result.stderr


def test_check_jars_refuses_a_folder_that_is_not_sparks(fake_jars, tmp_path):
    _, manifest = fake_jars
    empty = tmp_path / "empty"
    empty.mkdir()
    result = check_jars(empty, manifest)
    assert result.returncode != 0 and "is not a Spark jars folder" in result.stderr
    result = check_jars(fake_jars[0], empty)
    assert result.returncode != 0 and "no jars in" in result.stderr
