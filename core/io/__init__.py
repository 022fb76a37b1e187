"""Validation, all-or-nothing import and ADaM import/export; ``python -m core.io``.

Import pipeline (:func:`import_tables`):

1. validate every table (pandera value checks plus cross-table rules) and collect **all**
   problems; any problem raises :class:`~core.exceptions.DataValidationError` before anything
   is written;
2. in **one** transaction holding the writer lock: skip rows already stored (identical by
   natural key), reject rows that would overwrite a stored value, insert the rest, recompute
   the derived daily SOFA and provenance of the affected patients, bump the dataset version
   and write the import log. A crash or a killed process leaves the database as it was.

Re-importing the same content is a no-op (status ``"duplicate"``).

Modules (each imports only the ones above it; this package re-exports the public names):

- :mod:`~core.io.schema`: :data:`TABLE_SPECS`, the long formats as data (types, vocabularies,
  ranges, natural keys, event times) and the default rule sets.
- :mod:`~core.io.report`: problem reports (file rows, plain values, sorting, text table).
- :mod:`~core.io.adam`: ADaM codes and :func:`from_adam` (ADSL/ADAE/ADLB -> long format).
- :mod:`~core.io.read`: files and uploads -> raw tables; :data:`MAX_UPLOAD_BYTES`.
- :mod:`~core.io.coerce`: typing of file columns (text, numbers, date-times, booleans).
- :mod:`~core.io.validate`: :func:`validate_tables` (types, pandera checks, units, cross-table
  rules).
- :mod:`~core.io.stored`: stored rows read back as typed frames; :func:`has_data`.
- :mod:`~core.io.recompute`: :func:`recompute_derived` (daily SOFA and provenance).
- :mod:`~core.io.load`: :func:`import_tables` (dedupe, conflicts, insert), :func:`content_hash`.
- :mod:`~core.io.template`: :func:`template_tables`, a tiny hand-checkable table set.
- :mod:`~core.io.adam_spec`: the ADaM metadata as data (variables, labels, codelists,
  derivations; docs/adam.md).
- :mod:`~core.io.xpt`, :mod:`~core.io.dataset_json`, :mod:`~core.io.define_xml`: SAS XPORT v5,
  CDISC Dataset-JSON 1.1 and define.xml 2.1 writers.
- :mod:`~core.io.adam_export`: :func:`export_adam` (ADSL, ADSOFA, ADRS, ADTTE, ADAE, ADLB as
  CSV, XPT or Dataset-JSON, with define.xml; blinded exports follow core.policy).
- :mod:`~core.io.docx_report`: the cohort report as DOCX (python-docx).
- :mod:`~core.io.raw_export`: :func:`export_raw` (every raw table: a lossless copy).
- :mod:`~core.io.codes`: the source-code mapping tables (``mappings/*.csv``).
- :mod:`~core.io.clif`, :mod:`~core.io.fhir`, :mod:`~core.io.sdtm`: CLIF, FHIR R4 and CDISC
  SDTM readers; :mod:`~core.io.formats`: the reader of each ``--format``.
- :mod:`~core.io.demo`: :func:`synthetic_tables`, :func:`build_demo_database` (lock).
- :mod:`~core.io.cli` (run by ``__main__``): ``python -m core.io {validate,import,export,demo}``
  (``import --format raw|clif|fhir|sdtm [--append]``, ``export --format csv|xpt|json|raw``).

The package never reads ``os.environ``: the command line takes ``--database-url`` and otherwise
uses ``data/immunosep.sqlite`` under the project root.
"""

from __future__ import annotations

from core.io.adam import ADLB_BIOMARKERS, ADLB_PARAMCD, ADSOFA_PARAMCD, STUDYID, from_adam
from core.io.adam_export import export_adam
from core.io.cli import DEFAULT_DATABASE_PATH, PROJECT_ROOT, main
from core.io.demo import build_demo_database, synthetic_tables
from core.io.load import ImportResult, content_hash, import_files, import_tables
from core.io.raw_export import export_raw
from core.io.read import ADAM_INPUTS, MAX_UPLOAD_BYTES, read_files, read_uploads, table_name_for
from core.io.recompute import recompute_derived
from core.io.report import problems_table
from core.io.schema import (
    DEFAULT_ENDPOINT_RULES,
    DEFAULT_SOFA_RULES,
    TABLE_SPECS,
    ColumnSpec,
    Kind,
    TableSpec,
)
from core.io.stored import has_data
from core.io.template import template_tables
from core.io.validate import validate_tables

__all__ = [
    "ADAM_INPUTS",
    "ADLB_BIOMARKERS",
    "ADLB_PARAMCD",
    "ADSOFA_PARAMCD",
    "DEFAULT_DATABASE_PATH",
    "DEFAULT_ENDPOINT_RULES",
    "DEFAULT_SOFA_RULES",
    "MAX_UPLOAD_BYTES",
    "PROJECT_ROOT",
    "STUDYID",
    "TABLE_SPECS",
    "ColumnSpec",
    "ImportResult",
    "Kind",
    "TableSpec",
    "build_demo_database",
    "content_hash",
    "export_adam",
    "export_raw",
    "from_adam",
    "has_data",
    "import_files",
    "import_tables",
    "main",
    "problems_table",
    "read_files",
    "read_uploads",
    "recompute_derived",
    "synthetic_tables",
    "table_name_for",
    "template_tables",
    "validate_tables",
]
