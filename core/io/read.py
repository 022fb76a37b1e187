"""Files and uploads -> raw tables (CSV cells as text, Parquet with its types).

Tables are named after the file (``observations_site3.csv`` -> ``observations``); ADaM
ADSL/ADAE/ADLB files are mapped to the long formats with :func:`core.io.adam.from_adam`.
Nothing is typed or checked here beyond the file level (see :mod:`core.io.validate`).
"""

from __future__ import annotations

import contextlib
import gzip
import io as stdlib_io
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pyarrow.parquet as pq

from core.exceptions import DataValidationError, Problem
from core.io.adam import from_adam
from core.io.schema import TABLE_SPECS

#: file suffixes read (CSV in UTF-8, Parquet)
FILE_SUFFIXES: Final = (".csv", ".parquet", ".pq")
#: compressed containers unpacked before reading (with the decompressed-size bound): a gzip'd
#: CSV (``observations.csv.gz``) and a zip archive of CSV / Parquet files named after tables
ARCHIVE_SUFFIXES: Final = (".gz", ".zip")
#: bytes read at a time while decompressing (the bound is checked after every chunk)
_CHUNK: Final = 1024 * 1024
#: bytes per cell assumed when estimating a Parquet table's size in memory (a 64-bit value or
#: a pointer to a shared string): a dictionary- or run-length-encoded column of millions of
#: repeated values is tiny on disk and still costs this per cell once read
CELL_BYTES: Final = 8

#: ADaM file stems understood by :func:`read_files` (mapped with :func:`from_adam`)
ADAM_INPUTS: Final = ("adsl", "adae", "adlb")

#: the default upload size limit (bytes per file) of :func:`read_uploads`; the web app passes
#: ``Settings.upload_limits`` (IMMUNOSEP_UPLOAD_MAX_MB, settings.py)
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
#: default row limit per uploaded file (IMMUNOSEP_UPLOAD_MAX_ROWS)
MAX_UPLOAD_ROWS: Final = 1_000_000
#: default limit of a file's decompressed size (IMMUNOSEP_UPLOAD_MAX_DECOMPRESSED_MB)
MAX_DECOMPRESSED_BYTES: Final = 256 * 1024 * 1024


@dataclass(frozen=True)
class InputLimits:
    """What one input file may cost before it is read (issue 16: a 1.26 MB Parquet upload
    decompressed to 4.3 GB and pinned a worker for 146 s).

    ``None`` disables a limit. Every limit is checked before the file is parsed: the bytes
    received, the decompressed size (a gzip / zip stream is decompressed in chunks and
    stopped one chunk past the bound; a Parquet file's footer gives its uncompressed size,
    taken as at least ``rows x columns x`` :data:`CELL_BYTES`) and the rows (a Parquet footer's
    row count; a CSV's lines after the header).

    The web app builds them from settings.py (``Settings.upload_limits``); the command line
    reads an operator's own files without limits (:data:`NO_LIMITS`).
    """

    max_bytes: int | None = MAX_UPLOAD_BYTES
    max_rows: int | None = MAX_UPLOAD_ROWS
    max_decompressed_bytes: int | None = MAX_DECOMPRESSED_BYTES


#: the uploads' defaults (the Data page, the FHIR API)
UPLOAD_LIMITS: Final = InputLimits()
#: the command line (``python -m core.io import``): an operator's own files, no limits
NO_LIMITS: Final = InputLimits(max_bytes=None, max_rows=None, max_decompressed_bytes=None)


def table_name_for(path: str | Path) -> str | None:
    """Long-format table (or ADaM dataset) a file holds, from its stem; None if unknown.

    ``observations.csv`` and ``observations_site3.parquet`` both map to ``observations``;
    ``adsl.csv`` / ``ADSL.parquet`` map to ``adsl``.
    """
    stem = Path(path).name.split(".")[0].lower()
    for name in (*TABLE_SPECS, *ADAM_INPUTS):
        if stem == name or stem.startswith((name + "_", name + "-")):
            return name
    return None


def read_files(
    paths: Iterable[str | Path],
    *,
    max_bytes: int | None = None,
    limits: InputLimits = NO_LIMITS,
) -> dict[str, pd.DataFrame]:
    """Read CSV or Parquet files in the long formats (or ADaM ADSL/ADAE/ADLB).

    Parameters
    ----------
    paths
        Files; the table is taken from the file name (see :func:`table_name_for`). CSV cells
        are read as text and typed by validation; Parquet keeps its types.
    max_bytes
        Size limit per file (e.g. :data:`MAX_UPLOAD_BYTES` for uploads saved to disk); a
        larger file is reported, not read. None (default, the command line): no limit.
    limits
        Row and decompressed-size limits (:class:`InputLimits`); default :data:`NO_LIMITS`
        (the command line). ``max_bytes``, when given, overrides ``limits.max_bytes``.

    Returns
    -------
    dict
        Table name -> DataFrame whose index is the 0-based data row in the file. ADaM inputs
        are mapped to the long format with :func:`from_adam`. ``frame.attrs["source"]`` names
        the file each table came from.

    Raises
    ------
    DataValidationError
        Unknown file names, two files for one table, unreadable or malformed files, files
        above the size limit: every problem of every file at once.
    """
    sources = [(Path(p).name, Path(p)) for p in paths]
    max_bytes = limits.max_bytes if max_bytes is None else max_bytes
    if max_bytes is not None:
        # a missing file is reported by the reader (as unreadable), not here
        sizes = [(name, path.stat().st_size if path.is_file() else 0) for name, path in sources]
        _check_sizes(sizes, max_bytes)
    return _read_sources(_unpack(sources, limits))


def read_uploads(
    files: Mapping[str, bytes],
    *,
    max_bytes: int | None = None,
    limits: InputLimits = UPLOAD_LIMITS,
) -> dict[str, pd.DataFrame]:
    """Read uploaded files held in memory (the Data page), like :func:`read_files`.

    Parameters
    ----------
    files
        File name -> content (e.g. decoded from a ``dcc.Upload``).
    max_bytes
        Size limit per file; a larger file is reported, not read (default
        ``limits.max_bytes``).
    limits
        Size, row and decompressed-size limits (default :data:`UPLOAD_LIMITS`; the web app
        passes ``Settings.upload_limits``).

    Raises
    ------
    DataValidationError
        As :func:`read_files`, plus files above a limit (each named with the limit and its
        value).
    """
    max_bytes = limits.max_bytes if max_bytes is None else max_bytes
    if max_bytes is not None:
        _check_sizes([(name, len(data)) for name, data in files.items()], max_bytes)
    return _read_sources(_unpack(list(files.items()), limits))


def limit_problem(
    file_name: str, what: str, value: int, limit: int, unit: str, *, stopped: bool = False
) -> Problem:
    """A file above one of the :class:`InputLimits`: the file, the value and the limit
    (``stopped``: decompression was stopped at the limit, so the value is "more than" it)."""

    def show(n: int) -> str:
        return f"{n} bytes ({_mb(n)})" if unit == "bytes" else f"{n} {unit}"

    return Problem(
        file_name,
        None,
        None,
        f"{what}: {'more than ' if stopped else ''}{show(value)}",
        f"{what} of at most {show(limit)} per uploaded file (settings.py: "
        f"{'IMMUNOSEP_UPLOAD_MAX_ROWS' if unit == 'rows' else 'IMMUNOSEP_UPLOAD_MAX_DECOMPRESSED_MB'}"
        "): split it into several files imported one after another, or import it with "
        "`python -m core.io import`, which has no such limit",
    )


def _bounded_read(stream: Any, bound: int | None) -> bytes | None:
    """The whole stream, or None as soon as it yields more than ``bound`` bytes."""
    out = bytearray()
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return bytes(out)
        out += chunk
        if bound is not None and len(out) > bound:
            return None


def _source_bytes(source: Path | bytes) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else source


def _unpack(
    sources: Sequence[tuple[str, Path | bytes]], limits: InputLimits
) -> list[tuple[str, Path | bytes]]:
    """Decompress gzip / zip inputs within ``limits.max_decompressed_bytes`` and check every
    plain file's rows and (for Parquet) uncompressed size, before anything is parsed.

    A zip member is named ``archive.zip:member.csv`` in problems and read as ``member.csv``.
    """
    problems: list[Problem] = []
    out: list[tuple[str, Path | bytes]] = []
    bound = limits.max_decompressed_bytes
    for name, source in sources:
        suffix = Path(name).suffix.lower()
        if suffix not in ARCHIVE_SUFFIXES:
            out.append((name, source))
            continue
        try:
            data = _source_bytes(source)
        except OSError:
            out.append((name, source))  # reported as unreadable by the reader
            continue
        if suffix == ".gz":
            inner = name[: -len(".gz")]
            try:
                with gzip.GzipFile(fileobj=stdlib_io.BytesIO(data)) as stream:
                    content = _bounded_read(stream, bound)
            except (OSError, EOFError, zlib.error) as exc:
                problems.append(
                    Problem(name, None, None, type(exc).__name__, f"a gzip file ({exc})")
                )
                continue
            if content is None:
                problems.append(
                    limit_problem(
                        name, "decompressed size", bound or 0, bound or 0, "bytes", stopped=True
                    )
                )
                continue
            out.append((inner, content))
            continue
        try:
            archive = zipfile.ZipFile(stdlib_io.BytesIO(data))
            members = [m for m in archive.infolist() if not m.is_dir()]
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            problems.append(Problem(name, None, None, type(exc).__name__, f"a zip archive ({exc})"))
            continue
        declared = sum(m.file_size for m in members)
        if bound is not None and declared > bound:
            problems.append(limit_problem(name, "decompressed size", declared, bound, "bytes"))
            continue
        left = bound
        for member in members:
            label = f"{name}:{member.filename}"
            if Path(member.filename).suffix.lower() in ARCHIVE_SUFFIXES:
                problems.append(
                    Problem(label, None, None, member.filename, "no archive inside an archive")
                )
                continue
            try:
                with archive.open(member) as stream:
                    # the declared sizes may lie: the bound is enforced on the bytes produced
                    content = _bounded_read(stream, left)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error, RuntimeError) as exc:
                problems.append(
                    Problem(label, None, None, type(exc).__name__, f"a readable zip member ({exc})")
                )
                continue
            if content is None:
                problems.append(
                    limit_problem(
                        label, "decompressed size", bound or 0, bound or 0, "bytes", stopped=True
                    )
                )
                break
            if left is not None:
                left -= len(content)
            out.append((Path(member.filename).name, content))
    for name, source in out:
        problems.extend(_size_and_row_problems(name, source, limits))
    if problems:
        raise DataValidationError(problems)
    return out


def _size_and_row_problems(name: str, source: Path | bytes, limits: InputLimits) -> list[Problem]:
    """Rows and (Parquet) uncompressed size of one plain file, from its footer or line count."""
    suffix = Path(name).suffix.lower()
    if limits.max_rows is None and limits.max_decompressed_bytes is None:
        return []
    problems: list[Problem] = []
    if suffix in (".parquet", ".pq"):
        try:
            handle: Any = source if isinstance(source, Path) else stdlib_io.BytesIO(source)
            meta = pq.ParquetFile(handle).metadata
        except Exception:  # noqa: BLE001 - a corrupt file is reported by the reader
            return []
        rows = int(meta.num_rows)
        stored = sum(int(meta.row_group(i).total_byte_size) for i in range(meta.num_row_groups))
        size = max(stored, rows * int(meta.num_columns) * CELL_BYTES)
    elif suffix == ".csv":
        try:
            data = _source_bytes(source)
        except OSError:
            return []
        size = len(data)
        rows = max(0, data.count(b"\n") - 1 + (0 if data.endswith(b"\n") or not data else 1))
    else:
        return []
    if limits.max_rows is not None and rows > limits.max_rows:
        problems.append(limit_problem(name, "rows", rows, limits.max_rows, "rows"))
    bound = limits.max_decompressed_bytes
    if bound is not None and size > bound:
        problems.append(limit_problem(name, "decompressed size", size, bound, "bytes"))
    return problems


def _mb(n_bytes: float) -> str:
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def size_problems(sizes: Sequence[tuple[str, int]], max_bytes: int) -> list[Problem]:
    """One problem per file above ``max_bytes``: file name, its size, the limit and what to do.

    Also used by the Data page for files the browser holds back because of their size.
    """
    return [
        Problem(
            name,
            None,
            None,
            f"{size} bytes ({_mb(size)})",
            f"a file of at most {max_bytes} bytes ({_mb(max_bytes)}): split it into several "
            f"files imported one after another (e.g. {Path(name).stem}_1{Path(name).suffix}, "
            f"then {Path(name).stem}_2{Path(name).suffix}), or import it with "
            "`python -m core.io import`, which has no size limit",
        )
        for name, size in sizes
        if size > max_bytes
    ]


def _check_sizes(sizes: Sequence[tuple[str, int]], max_bytes: int) -> None:
    """Raise one problem per file above ``max_bytes`` (:func:`size_problems`)."""
    too_big = size_problems(sizes, max_bytes)
    if too_big:
        raise DataValidationError(too_big)


def _read_sources(sources: Sequence[tuple[str, Path | bytes]]) -> dict[str, pd.DataFrame]:
    problems: list[Problem] = []
    raw: dict[str, pd.DataFrame] = {}
    for file_name, source in sources:
        name = table_name_for(file_name)
        if Path(file_name).suffix.lower() not in FILE_SUFFIXES:
            problems.append(_wrong_type(file_name))
            continue
        if name is None:
            problems.append(
                Problem(
                    file_name,
                    None,
                    None,
                    file_name,
                    "a file named after a table: "
                    + ", ".join((*TABLE_SPECS, *ADAM_INPUTS))
                    + " (.csv or .parquet)",
                )
            )
            continue
        if name in raw:
            problems.append(
                Problem(
                    file_name,
                    None,
                    None,
                    file_name,
                    f"one file per table; {raw[name].attrs['source']} is also {name!r}",
                )
            )
            continue
        try:
            frame = _read_one(file_name, source)
        except DataValidationError as exc:
            problems.extend(exc.problems)
            continue
        frame.attrs["source"] = file_name
        raw[name] = frame
    if problems:
        raise DataValidationError(problems)
    adam = {k: raw.pop(k) for k in ADAM_INPUTS if k in raw}
    if adam:
        mapped = from_adam(adam.get("adsl"), adam.get("adae"), adam.get("adlb"))
        for name, frame in mapped.items():
            if name in raw:
                problems.append(
                    Problem(
                        frame.attrs.get("source", name),
                        None,
                        None,
                        name,
                        f"{name} from either {raw[name].attrs['source']} or ADaM, not both",
                    )
                )
            raw[name] = frame
    if problems:
        raise DataValidationError(problems)
    return raw


def _wrong_type(file_name: str) -> Problem:
    """A file that is neither CSV nor Parquet (by its suffix)."""
    suffix = Path(file_name).suffix.lower()
    hint = (
        "an Excel workbook: save each sheet as 'CSV UTF-8' named after its table"
        if suffix in (".xlsx", ".xls", ".xlsm", ".ods")
        else "other formats are not read"
    )
    return Problem(
        file_name,
        None,
        None,
        f"a {suffix} file" if suffix else "a file without suffix",
        f"a .csv (UTF-8 text) or .parquet file named after its table ({hint})",
    )


def _first_non_utf8(source: Path | bytes) -> tuple[int, bytes, str] | None:
    """(1-based line, offending byte, the line as Latin-1 text) of the first byte sequence
    that is not UTF-8; None if the whole file is UTF-8. Reads line by line (big files)."""
    with contextlib.ExitStack() as stack:
        handle: Any = (
            stack.enter_context(open(source, "rb"))
            if isinstance(source, Path)
            else stdlib_io.BytesIO(source)
        )
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = line.decode("latin-1").rstrip("\r\n")
                return number, line[exc.start : exc.start + 1], text[:80]
    return None


def _not_utf8(file_name: str, source: Path | bytes, exc: Exception) -> Problem:
    """A CSV file that is not UTF-8 encoded: where, which byte, what to do."""
    found = _first_non_utf8(source)
    if found is None:  # pandas saw a bad byte the line scan cannot place
        return Problem(file_name, None, None, str(exc), "UTF-8 encoded text")
    line, byte, text = found
    return Problem(
        file_name,
        line - 1 if line > 1 else None,  # data row (the header is line 1)
        None,
        text,
        f"UTF-8 encoded text: byte 0x{byte.hex().upper()} on line {line} is not UTF-8 (the file "
        "looks Latin-1 / Windows-1252 encoded, as Excel's plain 'CSV' saves it): save it as "
        "'CSV UTF-8' or convert it, e.g. `iconv -f latin1 -t utf-8`",
    )


def _read_one(file_name: str, source: Path | bytes) -> pd.DataFrame:
    suffix = Path(file_name).suffix.lower()
    handle: Any = source if isinstance(source, Path) else stdlib_io.BytesIO(source)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(handle, dtype=str, skipinitialspace=True, encoding="utf-8")
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(handle)
        else:
            raise DataValidationError([_wrong_type(file_name)])
    except DataValidationError:
        raise
    except UnicodeDecodeError as exc:
        raise DataValidationError([_not_utf8(file_name, source, exc)]) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataValidationError(
            [Problem(file_name, None, None, "(empty file)", "a header row naming the columns")]
        ) from exc
    except Exception as exc:  # pandas, pyarrow and codecs raise many types for corrupt files
        raise DataValidationError(
            [Problem(file_name, None, None, type(exc).__name__, f"a readable file ({exc})")]
        ) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    dup = frame.columns[frame.columns.duplicated()].tolist()
    if dup:
        raise DataValidationError(
            [Problem(file_name, None, c, c, "each column name once") for c in dup]
        )
    return frame.reset_index(drop=True)
