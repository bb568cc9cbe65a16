"""The stages a batch goes through (ingest, extract, decode, conform, check, curate, receipts,
publish, freshness) and :mod:`.chain`, the one definition of their order. Built on
:mod:`citylake.core`; imports nothing from :mod:`citylake.drivers`."""
