"""Every number and text format of the UI, in one place: the JAMA style of the trial's
statistics (P values, risk differences, ratios, proportions), plain numbers and percentages,
JSON-safe grid records and formula-safe CSV frames. Pure functions, no Dash."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

MINUS = "−"


def fmt_num(x: float, digits: int) -> str:
    """A number with a typographic minus; "–" for None / NaN / inf; no "−0.0"."""
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    s = f"{x:.{digits}f}"
    if s.startswith("-"):
        s = MINUS + s[1:]
    if s in (f"{MINUS}0.{'0' * digits}", f"{MINUS}0"):
        s = s[1:]
    return s


def fmt_p(p: float) -> str:
    """JAMA style: 2 decimals, 3 when below .01, '<.001' below .0005; no leading zero."""
    if p is None or math.isnan(p):
        return "–"
    if p < 0.0005:
        return "<.001"
    r3 = round(p, 3)
    s = f"{r3:.3f}" if r3 < 0.01 else f"{round(p, 2):.2f}"
    if s.startswith("1"):
        return ">.99"
    return s.removeprefix("0")


def fmt_rd(rd: float, lo: float, hi: float) -> str:
    """Risk difference in percentage points with its CI, e.g. '17.2 (6.8 to 27.2)'."""
    return f"{fmt_num(100 * rd, 1)} ({fmt_num(100 * lo, 1)} to {fmt_num(100 * hi, 1)})"


def fmt_ratio(x: float, lo: float, hi: float) -> str:
    return f"{fmt_num(x, 2)} ({fmt_num(lo, 2)}–{fmt_num(hi, 2)})"


def comparison_texts(cmp: Any) -> dict[str, str]:
    """Texts of a :class:`core.stats.ProportionComparison` as the paper prints them."""
    return {
        "rd": fmt_rd(cmp.risk_difference, *cmp.risk_difference_ci),
        "or": fmt_ratio(cmp.odds_ratio, *cmp.odds_ratio_ci),
        "p": fmt_p(cmp.p_value),
    }


def fmt_prop(events: int, n: int, lo: float | None = None, hi: float | None = None) -> str:
    if not n:
        return "–"
    s = f"{int(events)}/{int(n)} ({fmt_num(100 * events / n, 1)} %)"
    if lo is not None and hi is not None and not math.isnan(lo):
        s += f" [{fmt_num(100 * lo, 1)}–{fmt_num(100 * hi, 1)}]"
    return s


def fmt_number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.{digits}f}"


def fmt_pct(value: float, digits: int = 1) -> str:
    return "–" if value is None or math.isnan(value) else f"{100 * value:.{digits}f} %"


def records(frame: pd.DataFrame, columns: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """JSON-safe records for dash-ag-grid (NaN -> None, timestamps -> ISO strings)."""
    f = frame if columns is None else frame[list(columns)]
    out = f.astype(object).where(f.notna(), None)
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(f[c]):
            out[c] = f[c].dt.strftime("%Y-%m-%d %H:%M").where(f[c].notna(), None)
    return out.to_dict("records")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Neutralise spreadsheet formula injection (OWASP): text cells starting with = + - @ tab
    or carriage return get a leading apostrophe. Numbers stay numbers."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out
