#!/usr/bin/env bash
# airflow-init (one-shot): migrate the metadata database and create the admin user.
# Idempotent: `airflow db migrate` is a no-op on a current schema and `airflow users create`
# leaves an existing user alone.
set -euo pipefail
: "${AIRFLOW_ADMIN_USER:?set AIRFLOW_ADMIN_USER in .env}"
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"

airflow db migrate
airflow users create \
  --role Admin \
  --username "$AIRFLOW_ADMIN_USER" \
  --password "$AIRFLOW_ADMIN_PASSWORD" \
  --firstname "${AIRFLOW_ADMIN_FIRSTNAME:-Data}" \
  --lastname "${AIRFLOW_ADMIN_LASTNAME:-Engineer}" \
  --email "${AIRFLOW_ADMIN_EMAIL:-airflow-admin@example.invalid}"
