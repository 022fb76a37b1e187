"""Domain exceptions raised by :mod:`core`.

Libraries raise, applications handle: the UI catches these and shows a readable message.
Every data problem names *what* (column / variable and value), *where* (file or table, row,
patient, time) and *what was expected*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final

#: the value of a problem whose cell is empty (None, NaN, NaT): a report never shows a blank
EMPTY_VALUE: Final = "(empty)"


def _is_missing(value: Any) -> bool:
    """None, blank text, NaN, NaT or pandas.NA (without importing pandas)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(value != value)  # noqa: PLR0124 (NaN and NaT are not equal to themselves)
    except (TypeError, ValueError):  # pandas.NA (ambiguous truth value), arrays
        return type(value).__name__ == "NAType"


@dataclass(frozen=True)
class Problem:
    """One validation problem, precise enough to fix the source file.

    ``value`` is always shown: the offending value, or :data:`EMPTY_VALUE` when the cell is
    empty (a missing value is normalised to it on construction, so no report row is blank).
    """

    where: str  # file name or table name
    row: int | None  # 1-based data row in the file (header excluded), None if not row-bound
    column: str | None
    value: Any
    expected: str
    patient_id: str | None = None
    time: str | None = None

    def __post_init__(self) -> None:
        if _is_missing(self.value):
            object.__setattr__(self, "value", EMPTY_VALUE)

    def message(self) -> str:
        parts = [self.where]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.patient_id is not None:
            parts.append(f"patient {self.patient_id}")
        if self.time is not None:
            parts.append(f"time {self.time}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return f"{', '.join(parts)}: got {self.value!r}, expected {self.expected}"


class ImmunoSepError(Exception):
    """Base class of every domain error raised by core."""


class DataValidationError(ImmunoSepError, ValueError):
    """One or more problems in input data; nothing was written."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: tuple[Problem, ...] = tuple(problems)
        n = len(self.problems)
        head = "; ".join(p.message() for p in self.problems[:5])
        more = f" (and {n - 5} more)" if n > 5 else ""
        super().__init__(f"{n} data problem(s): {head}{more}")

    def records(self) -> list[dict[str, Any]]:
        """Problems as plain dicts (for a report table or CSV)."""
        return [asdict(p) for p in self.problems]


class UnknownPatientError(ImmunoSepError, KeyError):
    """A patient id that is not in the dataset."""

    def __init__(self, patient_id: str):
        self.patient_id = patient_id
        super().__init__(f"unknown patient id {patient_id!r}")

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return f"unknown patient id {self.patient_id!r}"
