#!/bin/bash
# Runs once, when the postgres-data volume is first initialised (docker-entrypoint-initdb.d):
# the Airflow metadata database and the data-resource directory database, each with its own role.
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
: "${CITYLAKE_DB_PASSWORD:?set CITYLAKE_DB_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v citylake_pw="$CITYLAKE_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8' TEMPLATE template0;
CREATE ROLE citylake LOGIN PASSWORD :'citylake_pw';
CREATE DATABASE citylake_directory OWNER citylake ENCODING 'UTF8' TEMPLATE template0;
SQL
