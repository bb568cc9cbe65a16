#!/bin/bash
# Runs once, when the postgres-data volume is first initialised (docker-entrypoint-initdb.d):
# the Airflow metadata database, and the data-resource directory and Iceberg catalog databases of
# citylake, each owned by its role. (A volume initialised before the catalog database existed does
# not run this again: deploy/README.md says how to add it by hand.)
set -euo pipefail
: "${AIRFLOW_DB_PASSWORD:?set AIRFLOW_DB_PASSWORD in .env}"
: "${CITYLAKE_DB_PASSWORD:?set CITYLAKE_DB_PASSWORD in .env}"
: "${MARQUEZ_DB_PASSWORD:?set MARQUEZ_DB_PASSWORD in .env}"
: "${CITYLAKE_CATALOG_READER_PASSWORD:?set CITYLAKE_CATALOG_READER_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v citylake_pw="$CITYLAKE_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8' TEMPLATE template0;
CREATE ROLE citylake LOGIN PASSWORD :'citylake_pw';
CREATE DATABASE citylake_directory OWNER citylake ENCODING 'UTF8' TEMPLATE template0;
-- the Iceberg catalog (CITYLAKE_CATALOG_URI): Iceberg's JDBC catalog creates its tables on first use
CREATE DATABASE citylake_catalog OWNER citylake ENCODING 'UTF8' TEMPLATE template0;
SQL

# The SQL endpoint's login (service sql-server): it may read the catalog's tables and nothing else,
# including those the pipeline (role citylake) creates later.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname citylake_catalog \
     -v reader_pw="$CITYLAKE_CATALOG_READER_PASSWORD" <<'SQL'
CREATE ROLE citylake_reader LOGIN PASSWORD :'reader_pw';
GRANT CONNECT ON DATABASE citylake_catalog TO citylake_reader;
GRANT USAGE ON SCHEMA public TO citylake_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO citylake_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE citylake IN SCHEMA public GRANT SELECT ON TABLES TO citylake_reader;
SQL

# Marquez (service marquez), the OpenLineage backend: its own role and database.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v marquez_pw="$MARQUEZ_DB_PASSWORD" <<'SQL'
CREATE ROLE marquez LOGIN PASSWORD :'marquez_pw';
CREATE DATABASE marquez OWNER marquez ENCODING 'UTF8' TEMPLATE template0;
SQL
