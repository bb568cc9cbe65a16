"""docker-compose.yml: Airflow sends its OpenLineage events to the stack's Marquez over HTTP, and
Marquez has its database, its config and a health check (rendered by `docker-compose config`)."""

from __future__ import annotations

import json

import pytest
import yaml
from test_compose import AIRFLOW_SERVICES, ENV_EXAMPLE, REPO_ROOT, env_example, run_config


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    result = run_config(ENV_EXAMPLE, tmp_path_factory.mktemp("compose-home"))
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_airflow_posts_openlineage_events_to_marquez(rendered):
    services = rendered["services"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
        assert transport == {"type": "http", "url": env_example()["CITYLAKE_OPENLINEAGE_URL"],
                             "endpoint": "api/v1/lineage"}, name
        assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"] == "citylake", name
    # the default URL names the marquez service and its API port
    assert env_example()["CITYLAKE_OPENLINEAGE_URL"] == "http://marquez:5000"
    marquez = services["marquez"]
    # docker-compose v1 renders "addr:published:target/tcp", v2 a mapping
    targets = [str(p["target"]) if isinstance(p, dict) else str(p).rsplit(":", 1)[-1].split("/")[0]
               for p in marquez["ports"]]
    assert "5000" in targets
    assert marquez["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["marquez-web"]["environment"]["MARQUEZ_HOST"] == "marquez"


def test_marquez_gets_its_database_and_config():
    config = yaml.safe_load((REPO_ROOT / "deploy" / "marquez" / "marquez.yml").read_text(encoding="utf-8"))
    assert config["db"]["url"] == "jdbc:postgresql://postgres:5432/marquez"
    assert config["db"]["user"] == "marquez" and config["db"]["password"] == "${MARQUEZ_DB_PASSWORD}"
    assert config["search"]["enabled"] is False  # no OpenSearch in the stack
    init = (REPO_ROOT / "deploy" / "postgres" / "init-databases.sh").read_text(encoding="utf-8")
    assert "CREATE ROLE marquez LOGIN PASSWORD :'marquez_pw'" in init
    assert "CREATE DATABASE marquez OWNER marquez" in init
    assert 'MARQUEZ_DB_PASSWORD:?set MARQUEZ_DB_PASSWORD in .env' in init
