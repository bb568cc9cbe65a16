"""The core: settings, the lake and its zones, the batch ledger, registrations, reason codes,
identifier, conform and masking rules. Imports nothing from :mod:`citylake.stages` or
:mod:`citylake.drivers`."""
