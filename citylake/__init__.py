"""citylake: the data lake of a city big-data resource centre (城市大数据资源中心).

Three layers, each importing only the ones below it (enforced by import-linter, `make lint`):

* :mod:`citylake.core` — settings, the lake and its zones, the batch ledger, registrations,
  identifier and masking rules;
* :mod:`citylake.stages` — ingest, extract, decode, conform, check, curate, receipts, freshness,
  publish, and the chain that orders them;
* :mod:`citylake.drivers` — what runs the stages: the CLI, the Airflow DAG factory, the
  spark-submit application.

See docs/architecture.md.
"""

__version__ = "0.1.0"
