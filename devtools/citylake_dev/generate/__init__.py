"""`citylake generate`: realistic, dirty departmental exports for every registration.

For each registration this writes ``files_per_resource`` export files into the lake's
landing zone (``landing/<dept>/<resource>/<file>``), in the registration's format and
encoding, and records in a truth file how many rows of each file were made bad, by the
exact reason string the conform job writes (``docs/conform-rules.md``).

Everything is driven by the registration: the field list, types, checks, code lists,
header aliases, money unit, min/max and key. Field names and titles only pick a more
realistic value generator (names, companies, addresses, stations, pollutants…); an
unknown field still gets plausible values of its type.

Modules, in the order a file is made:

* :mod:`.values` — :class:`~.values.FileGen`, one file's state, and valid canonical values
  per field (:func:`field_kind` picks the generator); :mod:`.entities` the people,
  organizations, places and air-quality readings a record is about, and the bijections that
  make keys unique by construction; :mod:`.naming` the file name, covered period and header
  spellings;
* :mod:`.shapes` — the shapes real exports come in (multi-line cells, other delimiters, title
  rows, wrapped JSON, .xls, mixed encodings…), each with its truth and registration variant;
* :mod:`.noise` — **valid noise**, which conform must accept (date formats, full-width text,
  null tokens, money as free text…);
* :mod:`.defects` — **bad rows**, 8–15 % of each file, each with *exactly one* defect;
* :mod:`.writers` — CSV, JSON, XLSX and XLS, written as rows are made; :mod:`.build` — rows in
  chunks (in parallel processes for big runs) streamed into each file; :mod:`.truth` — the
  truth file; :mod:`.cli` — the command.

Memory stays flat whatever the rows: keys are unique by construction, duplicates copy a recent
good row, and rows go to the file chunk by chunk. Output is deterministic: the same seed gives
the same bytes whatever the number of processes (the ingest stage relies on checksums to
recognise a file dropped twice). Every identifier written is checked with
:mod:`citylake.core.identifiers` on the exact text written (every row of the first 20,000,
then every 32nd): good ones must be valid, bad ones must fail with the intended reason.

Truth file: ``$CITYLAKE_HOME/generated/truth.json`` (outside the lake, never ingested)::

    {"seed": 20261121, "rows": 200, "files_per_resource": 1, "shape": null, "files": {
       "landing/scjg/enterprise_registration/企业登记信息_20261120.csv": {
          "resource": "enterprise_registration", "department": "scjg", "format": "csv",
          "encoding": "gbk", "rows": 200, "good": 178,
          "bad": {"uscc_check:uscc": 3, "duplicate_row": 2, …},
          "sha256": "…", "size": 41234, "headers": ["统一社会信用代码", …],
          "lines": 201, "short_rows": 0}}}

``rows`` counts records (data rows written, malformed lines included), not lines; ``bad``
counts records per reason (one reason per bad record); ``good = rows - sum(bad)``. ``lines``
(CSV, JSON) counts physical lines; ``short_rows`` (CSV, XLSX) counts records written with
fewer cells than the header, which a reader pads. ``headers`` is the header row as written.
A file made in a shape also has ``shape`` (its name and what a reader should find, e.g.
``{"name": "mixed_encoding", "gbk_lines": [[169, 174]], …}``), ``registration_overrides``
(what the registration must say to read it, e.g. ``{"source": {"format": "json", "pattern":
"*.json", "record_path": "result.records"}}``; ``{}`` when nothing) and
``registration_declared`` (the overrides plus what it may declare instead of leaving it to be
found: ``skip_rows``, ``delimiter``). Entries of earlier runs are kept while their landing
file is unchanged.
"""

from citylake_dev.generate.build import CHUNK_ROWS, PARALLEL_MIN_ROWS, generate
from citylake_dev.generate.cells import MISSING, GenerationError, RawLine, XDate, cell_text
from citylake_dev.generate.cli import DEFAULT_ROWS, DEFAULT_SEED, add_arguments, run
from citylake_dev.generate.shapes import SHAPES
from citylake_dev.generate.truth import TRUTH_RELPATH, truth_path
from citylake_dev.generate.values import FileGen, field_kind
from citylake_dev.generate.writers import xlsx_bytes

__all__ = [
    "CHUNK_ROWS",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "MISSING",
    "PARALLEL_MIN_ROWS",
    "SHAPES",
    "TRUTH_RELPATH",
    "FileGen",
    "GenerationError",
    "RawLine",
    "XDate",
    "add_arguments",
    "cell_text",
    "field_kind",
    "generate",
    "run",
    "truth_path",
    "xlsx_bytes",
]
