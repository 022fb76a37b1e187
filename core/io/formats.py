"""The input formats of ``python -m core.io import --format ...`` and their readers.

Each reader turns files of one format into the raw long-format tables of
:data:`core.io.schema.TABLE_SPECS` (nothing typed or checked beyond the format itself);
validation, unit conversion and the all-or-nothing import are shared by every format
(:mod:`core.io.validate`, :mod:`core.io.load`).

- ``raw``: the project's own CSV/Parquet tables (and ADaM ADSL/ADAE/ADLB), :mod:`core.io.read`;
- ``clif``: CLIF tables (Common Longitudinal ICU data Format), :mod:`core.io.clif`;
- ``fhir``: FHIR R4 Bundles (JSON), :mod:`core.io.fhir`;
- ``sdtm``: CDISC SDTM domains (CSV, XPT), :mod:`core.io.sdtm`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Final

import pandas as pd

from core.io.clif import read_clif
from core.io.fhir import read_fhir
from core.io.read import read_files
from core.io.sdtm import read_sdtm

Reader = Callable[[Sequence[Path]], dict[str, pd.DataFrame]]

#: format name -> reader
READERS: Final[Mapping[str, Reader]] = MappingProxyType(
    {"raw": read_files, "clif": read_clif, "fhir": read_fhir, "sdtm": read_sdtm}
)
FORMATS: Final = tuple(READERS)


def read_format(fmt: str, paths: Sequence[str | Path]) -> dict[str, pd.DataFrame]:
    """Raw tables from ``paths`` read as format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in READERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return READERS[fmt]([Path(p) for p in paths])
