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
SECRET_NAME_RE = re.compile(r"PASSWORD|SECRET|FERNET|ACCESS_KEY|SQL_ALCHEMY_CONN|DIRECTORY_URL|RSJ_SOURCE_DB")


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
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.access.key"] == env_example()["CITYLAKE_S3_ACCESS_KEY"]


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
            if SECRET_NAME_RE.search(key):
                assert "${" in str(value), f"{name}: {key} must come from .env, not be written in docker-compose.yml"


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
    assert "CREATE DATABASE airflow" in sql and "CREATE DATABASE citylake_directory" in sql


def test_directory_site_serves_what_publish_writes(compose_static):
    services = compose_static["services"]
    home = services["airflow-scheduler"]["environment"]["CITYLAKE_HOME"]
    assert f"directory:{home}/directory" in services["airflow-scheduler"]["volumes"]
    assert "directory:/usr/share/nginx/html:ro" in services["directory-site"]["volumes"]


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


def test_spark_image_is_the_pinned_pyspark_version():
    pyspark = _pin("pyspark")
    assert _arg("deploy/spark/Dockerfile", "SPARK_IMAGE").startswith(f"apache/spark:{pyspark}-")
    assert "java17" in _arg("deploy/spark/Dockerfile", "SPARK_IMAGE")
    assert importlib.metadata.version("pyspark") == pyspark


def test_airflow_image_is_the_pinned_airflow_version():
    airflow = _pin("apache-airflow")
    assert _arg("deploy/airflow/Dockerfile", "AIRFLOW_IMAGE") == f"apache/airflow:{airflow}-python3.11"
    assert _arg("deploy/airflow/Dockerfile", "AIRFLOW_VERSION") == airflow
    assert _arg("deploy/airflow/Dockerfile", "JAVA_IMAGE").startswith("eclipse-temurin:17")


def test_hadoop_version_is_the_one_spark_bundles():
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    bundled = sorted(jars.glob("hadoop-client-api-*.jar"))
    assert bundled, f"no hadoop-client-api jar in {jars}"
    version = bundled[0].name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert _arg("deploy/spark/Dockerfile", "HADOOP_VERSION") == version
    assert _arg("deploy/airflow/Dockerfile", "HADOOP_VERSION") == version


# ---- scripts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "script,shell",
    [
        ("deploy/minio/init.sh", "sh"),
        ("deploy/spark/add-s3a-jars.sh", "sh"),
        ("deploy/airflow/init.sh", "bash"),
        ("deploy/postgres/init-databases.sh", "bash"),
    ],
)
def test_scripts_are_valid_and_executable(script, shell):
    path = REPO_ROOT / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    result = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


FAKE_SUBMIT = """#!/bin/sh
# stands in for spark-submit --packages: puts what Ivy would resolve into spark.jars.ivy/jars
ivy=""; pkg=""
while [ $# -gt 0 ]; do
  case "$1" in
    --conf) case "$2" in spark.jars.ivy=*) ivy=${2#spark.jars.ivy=};; esac; shift 2;;
    --packages) pkg=$2; shift 2;;
    *) shift;;
  esac
done
echo "$pkg" > "$FAKE_LOG"
mkdir -p "$ivy/jars"
v=${pkg##*:}
touch "$ivy/jars/org.apache.hadoop_hadoop-aws-$v.jar" "$ivy/jars/software.amazon.awssdk_bundle-2.35.4.jar" \
      "$ivy/jars/org.slf4j_slf4j-api-2.0.16.jar" "$ivy/jars/org.wildfly.openssl_wildfly-openssl-1.1.3.Final.jar"
"""


@pytest.fixture
def fake_spark(tmp_path):
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("hadoop-client-api-3.5.0.jar", "hadoop-client-runtime-3.5.0.jar", "slf4j-api-2.0.17.jar"):
        (jars / name).touch()
    submit = tmp_path / "spark-submit"
    submit.write_text(FAKE_SUBMIT)
    submit.chmod(0o755)
    return jars, submit


def test_add_s3a_jars_adds_hadoop_aws_of_the_bundled_version(fake_spark, tmp_path):
    jars, submit = fake_spark
    env = {**os.environ, "FAKE_LOG": str(tmp_path / "pkg"), "HADOOP_VERSION": "3.5.0"}
    result = subprocess.run(
        ["sh", str(REPO_ROOT / "deploy/spark/add-s3a-jars.sh"), str(jars), str(submit)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert (tmp_path / "pkg").read_text().strip() == "org.apache.hadoop:hadoop-aws:3.5.0"
    assert sorted(p.name for p in jars.iterdir()) == [
        "bundle-2.35.4.jar",
        "hadoop-aws-3.5.0.jar",
        "hadoop-client-api-3.5.0.jar",
        "hadoop-client-runtime-3.5.0.jar",
        "slf4j-api-2.0.17.jar",  # Spark's own copy kept, not duplicated
        "wildfly-openssl-1.1.3.Final.jar",
    ]


def test_add_s3a_jars_refuses_a_hadoop_version_mismatch(fake_spark, tmp_path):
    jars, submit = fake_spark
    env = {**os.environ, "FAKE_LOG": str(tmp_path / "pkg"), "HADOOP_VERSION": "3.4.1"}
    result = subprocess.run(
        ["sh", str(REPO_ROOT / "deploy/spark/add-s3a-jars.sh"), str(jars), str(submit)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode != 0
    assert "bundles Hadoop 3.5.0" in result.stderr
    assert not (jars / "hadoop-aws-3.4.1.jar").exists() and not (tmp_path / "pkg").exists()
