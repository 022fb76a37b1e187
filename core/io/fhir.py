"""FHIR input -> raw long-format tables (work in progress: refuses every input for now)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from core.exceptions import DataValidationError, Problem


def read_fhir(paths: Sequence[Path]) -> dict[str, pd.DataFrame]:
    """Raw tables from FHIR files; not implemented yet, so every input is refused."""
    raise DataValidationError(
        [Problem(str(p), None, None, "fhir", "a supported format: raw, clif") for p in paths]
    )
