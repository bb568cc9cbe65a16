"""The lineage of citylake's tasks, as Airflow's OpenLineage provider wants it.

What a step reads and writes is stated once, in :mod:`citylake.stages.lineage`; this module turns
those datasets into OpenLineage ``Dataset`` objects (tables with their catalog name as a symlink):

* Python tasks (``@task``: detect, extract, ingest, receipt, publish, freshness, a build) carry them as
  ``inlets``/``outlets`` (:func:`task_lineage`): the provider has no extractor for decorated tasks and
  falls back to these;
* :class:`~citylake.drivers.airflow.operators.StageSparkSubmitOperator` answers the provider's
  ``get_openlineage_facets_on_start`` with :func:`operator_lineage`, worked out when the task runs
  (the registrations as they are then), over every resource the submit covers.

Where the events go is Airflow configuration (``[openlineage] transport``): a JSON-lines file under
``$CITYLAKE_HOME/openlineage/`` in the embedded default, Marquez over HTTP in docker-compose.yml.
"""

from __future__ import annotations

from citylake.core.registry import Registration
from citylake.core.settings import Settings
from citylake.stages import lineage


def ol_dataset(d: lineage.DatasetRef, settings: Settings):
    """An OpenLineage dataset; a table also says its catalog name (symlinks facet)."""
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import symlinks_dataset

    facets = {}
    if d.table:
        facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(identifiers=[symlinks_dataset.Identifier(
            namespace=f"iceberg://{settings.catalog_name}", name=d.table, type="TABLE")])
    return Dataset(namespace=d.namespace, name=d.name, facets=facets)


def _both(pair: tuple[list[lineage.DatasetRef], list[lineage.DatasetRef]], settings: Settings) -> dict:
    ins, outs = pair
    return {"inlets": [ol_dataset(d, settings) for d in ins], "outlets": [ol_dataset(d, settings) for d in outs]}


def task_lineage(step: str, reg: Registration, settings: Settings | None = None) -> dict:
    """``inlets``/``outlets`` keyword arguments for the Python task of ``step`` of ``reg``."""
    settings = settings or Settings.from_env()
    return _both(lineage.datasets(step, reg, settings), settings)


def build_task_lineage(build: lineage.Build, settings: Settings | None = None) -> dict:
    """``inlets``/``outlets`` for the task running a :class:`~citylake.stages.lineage.Build`."""
    settings = settings or Settings.from_env()
    return _both(lineage.build_datasets(build, settings), settings)


def publication_task_lineage(regs: list[Registration], settings: Settings | None = None) -> dict:
    """``inlets``/``outlets`` for the publication and the freshness report: every table in, the directory out."""
    settings = settings or Settings.from_env()
    return _both(lineage.publication_datasets(settings, regs), settings)


def operator_lineage(step: str, regs: list[Registration], settings: Settings):
    """The provider's ``OperatorLineage`` of one step over ``regs`` (for an operator's OpenLineage
    method): every dataset any of them reads or writes, once each, in the registrations' order."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    ins: dict = {}
    outs: dict = {}
    for reg in regs:
        i, o = lineage.datasets(step, reg, settings)
        ins.update((d.key, d) for d in i)
        outs.update((d.key, d) for d in o)
    return OperatorLineage(inputs=[ol_dataset(d, settings) for d in ins.values()],
                           outputs=[ol_dataset(d, settings) for d in outs.values()])
