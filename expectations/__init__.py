"""Great Expectations: the quality gate between the standardized and curated zones.

* :mod:`expectations.suite` — ``build_suite(reg)`` (baseline suite derived from the registration),
  ``load_extras(reg, suite=None)`` (hand-written ``extras/<resource>.json``), ``suite_for(reg)``.
* :mod:`expectations.runner` — ``check_batch(settings, reg, batch_id, quarantined=None)``: validates
  one standardized batch, writes ``quality/<resource>/batch_id=<id>/result.json`` and ``validation.json``.

Importing this package (or ``expectations.suite``) does not import Great Expectations.
"""
