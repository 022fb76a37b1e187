"""The command line: ``python -m core.io {import,validate,export,demo,serve,audit-verify} ...``.

The command line never reads ``os.environ``: it takes ``--database-url`` and otherwise uses
``data/immunosep.sqlite`` under the project root.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import Engine

from core import db
from core.audit import check_audit_chain, record_audit
from core.exceptions import DataValidationError
from core.io.adam_export import DEFINE_FILE, export_adam
from core.io.demo import build_demo_database
from core.io.formats import FORMATS, read_format
from core.io.load import import_tables
from core.io.raw_export import ARM_TABLE, FILE_FORMATS, export_raw
from core.io.report import problems_table
from core.io.stored import has_data, stored_patients
from core.io.validate import validate_tables

PROJECT_ROOT: Final = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_PATH: Final = PROJECT_ROOT / "data" / "immunosep.sqlite"
#: formats of ``export --format``: ADaM as CSV, SAS XPORT v5 or Dataset-JSON 1.1 (each with a
#: define.xml 2.1), or the raw tables; ``adam`` is the former name of ``csv``
EXPORT_FORMATS: Final = ("csv", "xpt", "json", "raw", "adam")
#: ``export --format`` aliases
EXPORT_ALIASES: Final = {"adam": "csv"}
#: the help text's summary (the first line of the former single-module docstring)
DESCRIPTION: Final = (
    "Validation, all-or-nothing import and ADaM import/export; ``python -m core.io``."
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m core.io {import,export,demo,validate,audit-verify} ...``; returns the exit
    code. ``export`` is recorded in the audit trail; ``audit-verify`` prints the chain's
    problems and exits 1 when there are any."""
    parser = argparse.ArgumentParser(prog="python -m core.io", description=DESCRIPTION)
    parser.add_argument(
        "--database-url",
        default=None,
        help=f"SQLAlchemy URL (default: sqlite:///{DEFAULT_DATABASE_PATH})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_imp = sub.add_parser("import", help="validate and import files, all or nothing")
    p_imp.add_argument("files", nargs="+", type=Path, help="files (or a directory for clif)")
    p_imp.add_argument("--user", default="cli")
    p_imp.add_argument(
        "--append",
        action="store_true",
        help="new rows for patients already stored (any other patient is refused); "
        "idempotent: rows already stored are skipped",
    )
    p_val = sub.add_parser("validate", help="print the problems of files; exit 1 on problems")
    p_val.add_argument("files", nargs="+", type=Path)
    for p in (p_imp, p_val):
        p.add_argument(
            "--format",
            choices=FORMATS,
            default="raw",
            help="input format: raw (this project's tables, default), clif, fhir, sdtm",
        )
    p_exp = sub.add_parser(
        "export",
        help="write ADaM (--format csv|xpt|json, with define.xml) or the raw tables (raw)",
        description=(
            "--format csv (default; 'adam' is an alias), xpt (SAS XPORT v5) or json (CDISC "
            "Dataset-JSON 1.1): ADSL, ADSOFA, ADRS, ADTTE, ADAE, ADLB and their define.xml 2.1, "
            "for analysis (docs/adam.md); without --with-arm the export follows the blinded UI's "
            "guards (no treatment, no post-baseline ferritin / HLA-DR, no AESI records). Not "
            "re-importable without loss (no ICU stays, infusions, ventilation/RRT episodes, "
            "doses or disposition). --format raw: every raw table in its long format (values and units "
            "as received), one file per table; `python -m core.io import DIR/*.csv` into an "
            "empty database (SQLite or PostgreSQL) reproduces every number. Without --with-arm "
            "the randomisation table (the arm) is not written."
        ),
    )
    p_exp.add_argument("directory", type=Path)
    p_exp.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="csv",
        help="csv (default, alias adam), xpt, json: ADaM datasets with define.xml; raw: "
        "lossless copy of the raw tables",
    )
    p_exp.add_argument(
        "--file-format",
        choices=FILE_FORMATS,
        default="csv",
        help="raw export only: csv (default) or parquet",
    )
    p_exp.add_argument(
        "--with-arm",
        action="store_true",
        help="include the arm (unblinded): ARM/TRT01P/TRTP/TRTA in ADaM, randomisation.csv in raw",
    )
    p_exp.add_argument("--user", default="cli", help="user recorded in the audit trail")
    sub.add_parser(
        "serve",
        help="run the web app (`python -m app` in a child process; settings from the "
        "environment, settings.py)",
    )
    p_ver = sub.add_parser(
        "audit-verify", help="verify the audit trail's hash chain; exit 1 on problems"
    )
    p_demo = sub.add_parser("demo", help="build the synthetic demo database if it is empty")
    p_demo.add_argument("--patients", type=int, default=281)
    p_demo.add_argument("--seed", type=int, default=20251208)
    p_demo.add_argument(
        "--enrolment-days",
        type=float,
        default=None,
        help="pack the enrolment into this many days (default: the trial's 900)",
    )
    p_demo.add_argument(
        "--charting",
        choices=("dense", "sparse"),
        default="dense",
        help="sparse: one charting per variable and day (100,000-patient benchmarks)",
    )
    for p in (p_imp, p_val, p_exp, p_demo, p_ver):
        p.add_argument("--database-url", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{DEFAULT_DATABASE_PATH}"
    out = sys.stdout
    engines: list[Engine] = []
    try:
        return _run(args, url, out, engines)
    finally:
        for engine in engines:
            engine.dispose()


def _run(args: argparse.Namespace, url: str, out: Any, engines: list[Engine]) -> int:
    """Body of :func:`main`; created engines are appended to ``engines`` for disposal."""
    if args.command == "serve":
        # a child process: the engine (core) never imports the web stack (docs/architecture.md)
        return subprocess.call([sys.executable, "-m", "app"], cwd=PROJECT_ROOT)
    try:
        if args.command == "validate":
            tables = read_format(args.format, args.files)
            engine = db.make_engine(url) if args.database_url else None
            if engine is not None:
                engines.append(engine)
            existing = None
            if engine is not None and has_data(engine):
                with engine.connect() as conn:
                    existing = stored_patients(conn)
            problems = validate_tables(tables, existing_patients=existing)
            out.write(problems_table(problems) + "\n")
            return 1 if problems else 0
        engine = db.make_engine(url)
        engines.append(engine)
        if args.command == "import":
            tables = read_format(args.format, args.files)
            result = import_tables(engine, tables, user=args.user, append=args.append)
            out.write(
                f"{result.status}: import {result.import_id}, dataset version "
                f"{result.dataset_version}, rows {json.dumps(dict(result.inserted))} "
                f"in {result.seconds:.2f} s\n"
            )
            return 0
        if args.command == "export":
            return _export(args, engine, out)
        if args.command == "audit-verify":
            report = check_audit_chain(engine)
            for problem in report.problems:
                out.write(f"{problem}\n")
            state = "chain verified" if report.ok else f"{len(report.problems)} problem(s)"
            out.write(f"{state}: {report.n_rows} rows\n")
            return 0 if report.ok else 1
        version = build_demo_database(
            engine,
            seed=args.seed,
            n_randomised=args.patients,
            charting=args.charting,
            enrolment_days=args.enrolment_days,
        )
        out.write(f"dataset version {version}\n")
        return 0
    except DataValidationError as exc:
        out.write(problems_table(exc.problems) + "\n")
        return 1


def _audit_export(
    args: argparse.Namespace, engine: Engine, what: str, paths: Mapping[str, Path]
) -> None:
    """One audit row per export from the command line (who, where, blinded or not, files)."""
    db.ensure_schema(engine)
    files = ", ".join(Path(p).name for p in paths.values())
    record_audit(
        engine,
        user=args.user,
        role="cli",
        action="export",
        target=str(args.directory),
        detail=f"{what}: {files}",
    )


def _export(args: argparse.Namespace, engine: Engine, out: Any) -> int:
    """``export``: ADaM datasets or the raw tables; prints the files written."""
    fmt = EXPORT_ALIASES.get(args.format, args.format)
    if fmt != "raw":
        if args.file_format != "csv":
            out.write(
                "--file-format applies to --format raw only; ADaM is written with --format "
                "csv, xpt or json\n"
            )
            return 2
        paths = export_adam(engine, args.directory, include_arm=args.with_arm, file_format=fmt)
        paths = {**paths, "define": Path(args.directory) / DEFINE_FILE}
        blinding = "unblinded (ARM/ARMCD)" if args.with_arm else "blinded (no ARM/ARMCD)"
        _audit_export(args, engine, f"ADaM export, {blinding}", paths)
        out.write("\n".join(str(p) for p in paths.values()) + "\n")
        return 0
    paths = export_raw(
        engine, args.directory, include_arm=args.with_arm, file_format=args.file_format
    )
    blinding = "unblinded (randomisation)" if args.with_arm else "blinded (no randomisation)"
    _audit_export(args, engine, f"raw export, {blinding}", paths)
    out.write("\n".join(str(p) for p in paths.values()) + "\n")
    if not args.with_arm:
        out.write(
            f"{ARM_TABLE} (the arm) not written: blinded export; pass --with-arm for a "
            "complete, unblinded copy\n"
        )
    return 0


def console_main() -> int:
    """The ``immunosep`` console command (pyproject ``[project.scripts]``): the same
    sub-commands as ``python -m core.io`` (serve, import, validate, export, demo,
    audit-verify)."""
    return main(sys.argv[1:])
