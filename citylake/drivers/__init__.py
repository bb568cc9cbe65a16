"""What drives the stages: the `citylake` CLI (:mod:`.cli`), the Airflow DAG factory
(:mod:`.airflow`) and the spark-submit application of the Spark steps (:mod:`.sparkjob`)."""
