"""Files and uploads -> raw tables (CSV cells as text, Parquet with its types).

Tables are named after the file (``observations_site3.csv`` -> ``observations``); ADaM
ADSL/ADAE/ADLB files are mapped to the long formats with :func:`core.io.adam.from_adam`.
Nothing is typed or checked here beyond the file level (see :mod:`core.io.validate`).
"""

from __future__ import annotations

import contextlib
import io as stdlib_io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd

from core.exceptions import DataValidationError, Problem
from core.io.adam import from_adam
from core.io.schema import TABLE_SPECS

#: file suffixes read (CSV in UTF-8, Parquet)
FILE_SUFFIXES: Final = (".csv", ".parquet", ".pq")

#: ADaM file stems understood by :func:`read_files` (mapped with :func:`from_adam`)
ADAM_INPUTS: Final = ("adsl", "adae", "adlb")

#: the one upload size limit (bytes per file): default of :func:`read_uploads`, to be passed
#: to :func:`read_files` for uploads saved to disk, and the Data page's upload limit
MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024


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
    paths: Iterable[str | Path], *, max_bytes: int | None = None
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
    if max_bytes is not None:
        # a missing file is reported by the reader (as unreadable), not here
        sizes = [(name, path.stat().st_size if path.is_file() else 0) for name, path in sources]
        _check_sizes(sizes, max_bytes)
    return _read_sources(sources)


def read_uploads(
    files: Mapping[str, bytes], *, max_bytes: int = MAX_UPLOAD_BYTES
) -> dict[str, pd.DataFrame]:
    """Read uploaded files held in memory (the Data page), like :func:`read_files`.

    Parameters
    ----------
    files
        File name -> content (e.g. decoded from a ``dcc.Upload``).
    max_bytes
        Size limit per file; a larger file is reported, not read.

    Raises
    ------
    DataValidationError
        As :func:`read_files`, plus files above the size limit.
    """
    _check_sizes([(name, len(data)) for name, data in files.items()], max_bytes)
    return _read_sources(list(files.items()))


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
