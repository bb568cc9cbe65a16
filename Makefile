# Everyday commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export CITYLAKE_HOME ?= $(CURDIR)/var

.PHONY: demo test venv lint clean bench airflow

# The product with its test tools, and the dev tools (a separate distribution, devtools/).
# pyspark is reinstalled last: the Spark provider's pyspark-client writes into the same pyspark/
# folder (pyproject.toml). Spark's jars (Iceberg, S3, JDBC drivers) come from deploy/spark/pom.xml.
$(STAMP): pyproject.toml devtools/pyproject.toml deploy/spark/pom.xml scripts/build-auth-jar.sh \
          deploy/spark/auth/src/main/java/org/citylake/auth/TokenAuthenticator.java
	bash scripts/system-deps.sh build
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/python -m pip install --quiet -e '.[test]' -e ./devtools
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps "$$($(BIN)/python -c 'import importlib.metadata as m; print("pyspark==" + m.version("pyspark"))')"
	bash scripts/fetch-jars.sh $(VENV)/share/citylake/jars
	touch $(STAMP)

venv: $(STAMP)

# LAKE=s3: the lake on a local S3 server (SeaweedFS) the demo starts and stops; KEEP_S3=1 leaves it running.
demo: $(STAMP)
	$(BIN)/citylake demo --lake $(or $(LAKE),local)$(if $(KEEP_S3), --keep-s3)

# The Airflow UI on the embedded home (after `make demo`: its runs): api-server, scheduler and
# dag-processor on 127.0.0.1:8080 with a login, the DAGs unpaused; Ctrl-C stops them.
# ARGS: e.g. --port 8081, --no-schedule (no scheduled runs).
airflow: $(STAMP)
	$(BIN)/python -m citylake_dev.airflow_ui $(ARGS)

test: $(STAMP)
	bash scripts/system-deps.sh
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest tests

# The pipeline beside Spark's, pyarrow's and DuckDB's bare CSV→Parquet copies (docs/benchmark.md).
# ARGS: e.g. --10m (adds 10 M rows), --sizes 20000, --resource air_quality_hourly.
bench: $(STAMP)
	$(BIN)/python -m citylake_dev.bench $(ARGS)

# Both run even when the first fails; either failing fails the target.
lint: $(STAMP)
	$(BIN)/ruff check . ; ruff=$$? ; \
	$(BIN)/lint-imports --no-cache --no-logo ; imports=$$? ; \
	test $$ruff -eq 0 && test $$imports -eq 0

clean:
	rm -rf var .pytest_cache .ruff_cache .import_linter_cache test-artifacts
