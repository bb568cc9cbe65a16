"""Development and test tooling for citylake (distribution ``citylake-dev``, not shipped with the product).

* :mod:`.generate` — realistic, dirty departmental exports and their truth file (`citylake generate`).
* :mod:`.demo` — `citylake demo`: generate, run the chain for every resource, publish, summarise.
* :mod:`.airflow_embedded` — the embedded Airflow home and DAG runs for the demo and the DAG tests.
* :mod:`.demo_source` — the demo's SQL source database.
* :mod:`.s3server` — a throw-away SeaweedFS S3 server for the tests.
"""
