"""Unit vocabulary and conversion at ingestion (clinical.md section 5.1).

Every value is converted **once**, here, to the canonical unit of docs/architecture.md
("Raw long format"); scorers never convert. The value and unit as received are kept in
``value_as_received`` / ``unit_as_received`` so that provenance can show the original and the
``use_printed_si_bands`` flag (clinical.md 5.2) can score SI values on the printed SI bands.

Nothing is guessed and nothing is dropped: an unknown variable, an unknown unit, a missing value
or an implausible value raises :class:`core.exceptions.DataValidationError` listing **all**
problems at once, each naming patient, variable, time, value and what was expected.

Variables, units, factors and ranges are described once in :mod:`core.concepts`; the tables
here (:data:`CANONICAL_UNITS`, :data:`ACCEPTED_UNITS`, :data:`PLAUSIBLE_RANGES`,
:data:`INFUSION_UNITS`, :data:`SCORED_DRUGS`) are read-only views of it.

Sources: SRC-VINCENT (mg/dL bands), SRC-MIMIC ``bg.sql`` (FiO2 1-20 is probable O2 flow),
SRC-RICU (plausibility ranges, ``plt`` units), SRC-SEP3 (lactate 2 mmol/L = 18 mg/dL).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final, NamedTuple

import numpy as np
import pandas as pd

from core.concepts import (
    BILIRUBIN_UMOL_L_PER_MG_DL,
    CONVERSION_DECIMALS,
    CREATININE_UMOL_L_PER_MG_DL,
    DRUGS,
    FIO2_FRACTION_PER_PCT,
    KPA_TO_MMHG,
    LACTATE_MG_DL_PER_MMOL_L,
    OBSERVATIONS,
    SCORED_DRUGS,
)
from core.exceptions import DataValidationError, Problem

#: FiO2 values in (1, 20] (or [1, 20] charted as %) are probable O2 flow in L/min
#: (SRC-MIMIC bg.sql, SRC-LOINC 3151-8 "Inhaled oxygen flow rate"); rejected, never converted
FIO2_PROBABLE_FLOW_RANGE: Final = (1.0, 20.0)


class PlausibleRange(NamedTuple):
    """Inclusive plausible range of a variable, in its canonical unit."""

    low: float
    high: float
    unit: str


# --- read-only views of core.concepts (the one place each variable is described) -------------
#: canonical unit per observation variable (docs/architecture.md)
CANONICAL_UNITS: Final = MappingProxyType({c.name: c.unit for c in OBSERVATIONS})
#: accepted unit spellings (after :func:`unit_key`) -> multiplicative factor to canonical unit
ACCEPTED_UNITS: Final = MappingProxyType({c.name: c.units for c in OBSERVATIONS})
#: plausible ranges in canonical units (observations and scored drugs); reused by the importer
PLAUSIBLE_RANGES: Final = MappingProxyType(
    {c.name: PlausibleRange(c.low, c.high, c.unit) for c in (*OBSERVATIONS, *DRUGS)}
)
#: infusion rate units -> whether the rate must be divided by body weight
INFUSION_UNITS: Final = MappingProxyType(
    {u: False for d in DRUGS for u in d.units}
    | {u: True for d in DRUGS for u in d.per_weight_units}
)


def convert(value: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``value * factor`` in the canonical unit, exact at the SOFA cut-offs.

    A converted value (factor != 1) is rounded to :data:`core.concepts.CONVERSION_DECIMALS`
    decimals, far below any assay resolution, so that binary floating point cannot put a
    value printed exactly on a cut-off one band low (102.6 umol/L bilirubin -> 6.0 mg/dL,
    309.4 umol/L creatinine -> 3.5 mg/dL). Values already in the canonical unit are returned
    unchanged. NaN stays NaN.
    """
    value, factor = np.broadcast_arrays(
        np.asarray(value, dtype=np.float64), np.asarray(factor, dtype=np.float64)
    )
    out = value.copy()
    # only the rows that convert are multiplied and rounded (most are in the canonical unit)
    todo = factor != 1.0
    out[todo] = np.round(value[todo] * factor[todo], CONVERSION_DECIMALS)
    return out


#: UCUM unit spellings (after the normalisation of :func:`unit_key`) -> the spelling of the
#: concept table; UCUM "1" (dimensionless) is a fraction, "{score}" a point score
UCUM_ALIASES: Final = MappingProxyType(
    {
        "1": "fraction",
        "{score}": "points",
        "{points}": "points",
        "{ratio}": "fraction",
        "ug/kg/min": "mcg/kg/min",
        "ug/min": "mcg/min",
    }
)

OBSERVATION_COLUMNS: Final = ("patient_id", "time", "variable", "value", "unit")
INFUSION_COLUMNS: Final = ("patient_id", "drug", "start", "stop", "rate", "unit")


def unit_key(unit: object) -> str | None:
    """Normalised spelling of a unit string (case, spaces, micro sign); None if missing."""
    if unit is None or (isinstance(unit, float) and np.isnan(unit)) or unit is pd.NA:
        return None
    key = str(unit).strip().casefold().replace(" ", "")
    if not key:
        return None
    # micro sign and Greek mu -> "u" (umol, ug, ul); "mcmol" -> "umol"; mcg/L = ug/L
    key = key.replace("µ", "u").replace("μ", "u").replace("mcmol", "umol")
    key = key.replace("mcg/l", "ug/l")
    # UCUM spellings (FHIR, LOINC): 10*3/uL = 10^3/uL, mm[Hg] = mmHg, {score} = points
    key = key.replace("10*", "10^").replace("[hg]", "hg")
    return UCUM_ALIASES.get(key, key)


def _fmt_time(t: object) -> str | None:
    return None if pd.isna(t) else str(pd.Timestamp(t))  # type: ignore[arg-type]


def _problems_for(
    frame: pd.DataFrame,
    mask: np.ndarray,
    *,
    where: str,
    column: str,
    value_col: str,
    time_col: str,
    expected: str | np.ndarray,
    variable_col: str | None = None,
) -> list[Problem]:
    """One Problem per masked row (row = 1-based position in ``frame``)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    pids = frame["patient_id"].to_numpy()[idx] if "patient_id" in frame else [None] * idx.size
    times = frame[time_col].to_numpy()[idx] if time_col in frame else [None] * idx.size
    values = frame[value_col].to_numpy()[idx] if value_col in frame else [None] * idx.size
    cols = frame[variable_col].to_numpy()[idx] if variable_col else [column] * idx.size
    exp = expected[idx] if isinstance(expected, np.ndarray) else [expected] * idx.size
    out = []
    for i, pid, t, v, c, e in zip(idx, pids, times, values, cols, exp, strict=True):
        val = v.item() if isinstance(v, np.generic) else v
        out.append(
            Problem(
                where=where,
                row=int(i) + 1,
                column=None if pd.isna(c) else str(c),
                value=val,
                expected=str(e),
                patient_id=None if pd.isna(pid) else str(pid),
                time=_fmt_time(t),
            )
        )
    return out


def _missing_columns(frame: pd.DataFrame, required: tuple[str, ...], where: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataValidationError(
            Problem(where, None, c, None, "a column of this name") for c in missing
        )


def normalize_observations(obs: pd.DataFrame, *, where: str = "observations") -> pd.DataFrame:
    """Validate raw time-stamped observations and convert them to canonical units.

    The frame of :func:`normalize_observations_coded` (see there).
    """
    return normalize_observations_coded(obs, where=where)[0]


def normalize_observations_coded(
    obs: pd.DataFrame, *, where: str = "observations"
) -> tuple[pd.DataFrame, np.ndarray]:
    """Validate raw time-stamped observations and convert them to canonical units; also the
    code of each row's variable (its position in :data:`CANONICAL_UNITS`), which the
    derivation reuses instead of looking the text up again.

    Parameters
    ----------
    obs
        Long table ``patient_id, time, variable, value, unit[, source]`` (docs/architecture.md).
        ``variable`` and ``unit`` may be strings or categoricals (categoricals are faster).
    where
        Table or file name used in problem messages.

    Returns
    -------
    (DataFrame, ndarray)
        A new frame with the same rows and columns, ``value`` / ``unit`` in the canonical unit
        of :data:`CANONICAL_UNITS`, plus ``value_as_received`` and ``unit_as_received``; and
        the int64 variable codes. The input is not modified; for speed the columns passed
        through unchanged are a shallow copy (shared buffers, as with pandas copy-on-write,
        like :func:`core.sofa.score_sofa`): adding or replacing columns never touches ``obs``.

    Raises
    ------
    DataValidationError
        Listing every problem: missing patient/time/value, unknown variable, unknown or
        missing unit, FiO2 in 1-20 (probable O2 flow, SRC-MIMIC ``bg.sql``), a GCS that is not
        an integer, or a value outside :data:`PLAUSIBLE_RANGES` after conversion.

    Notes
    -----
    Conversions (clinical.md 5.1; factors in :mod:`core.concepts`): PaO2 kPa x 7.50062; FiO2 %
    x 0.01; bilirubin umol/L / 17.1; creatinine umol/L / 88.4; lactate mg/dL / 9.01; platelets
    10^9/L = G/L = K/uL x 1; ferritin ug/L x 1 (pmol/L is rejected: its factor is [U]).
    Converted values are rounded by :func:`convert` (exact at the SOFA cut-offs).
    """
    _missing_columns(obs, OBSERVATION_COLUMNS, where)
    n = len(obs)
    variables = tuple(CANONICAL_UNITS)
    var_codes = pd.Categorical(obs["variable"], categories=variables).codes.astype(np.int64)
    unit_codes, unit_uniques = pd.factorize(obs["unit"], use_na_sentinel=True)
    unit_codes = unit_codes.astype(np.int64)
    n_units = len(unit_uniques)
    keys = [unit_key(u) for u in unit_uniques]
    # lookup table (variable code, unit code) -> factor, NaN = not accepted
    factor_lut = np.full((len(variables), max(n_units, 1)), np.nan)
    for vi, var in enumerate(variables):
        accepted = ACCEPTED_UNITS[var]
        for ui, key in enumerate(keys):
            if key in accepted:
                factor_lut[vi, ui] = accepted[key]
    low = np.array([PLAUSIBLE_RANGES[v].low for v in variables])
    high = np.array([PLAUSIBLE_RANGES[v].high for v in variables])

    raw = pd.to_numeric(obs["value"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    known_var = var_codes >= 0
    has_unit = unit_codes >= 0
    vc = np.where(known_var, var_codes, 0)
    factor = factor_lut[vc, np.where(has_unit, unit_codes, 0)]
    factor = np.where(known_var & has_unit, factor, np.nan)
    value = convert(raw, factor)

    pid_missing = obs["patient_id"].isna().to_numpy()
    times = pd.to_datetime(obs["time"], errors="coerce", cache=False)  # (no sample scan)
    time_missing = times.isna().to_numpy()
    value_missing = np.isnan(raw)
    bad_unit = known_var & ~np.isnan(raw) & np.isnan(factor)
    fio2 = var_codes == variables.index("fio2")
    pct = np.zeros(n, dtype=bool)
    pct_code = [i for i, k in enumerate(keys) if k == "%"]
    if pct_code:
        pct = unit_codes == pct_code[0]
    flow = fio2 & ~np.isnan(factor) & (raw <= FIO2_PROBABLE_FLOW_RANGE[1])
    flow &= np.where(pct, raw >= FIO2_PROBABLE_FLOW_RANGE[0], raw > FIO2_PROBABLE_FLOW_RANGE[0])
    ok_value = ~np.isnan(value)
    out_of_range = ok_value & ~flow & ((value < low[vc]) | (value > high[vc]))
    gcs = var_codes == variables.index("gcs_total")
    not_integer = gcs & ok_value & ~out_of_range & (value != np.round(value))

    problems: list[Problem] = []
    common = {"where": where, "value_col": "value", "time_col": "time"}
    problems += _problems_for(
        obs, pid_missing, column="patient_id", expected="a patient id", **common
    )
    problems += _problems_for(
        obs, time_missing, column="time", expected="a date-time (UTC)", **common
    )
    problems += _problems_for(
        obs,
        ~known_var,
        column="variable",
        variable_col="variable",
        expected=f"a variable in {', '.join(variables)}",
        **common,
    )
    problems += _problems_for(
        obs,
        known_var & value_missing,
        column="value",
        variable_col="variable",
        expected="a number (a missing value is not an observation)",
        **common,
    )
    if bad_unit.any():
        accepted_txt = np.array(
            [
                f"unit {('missing' if not has_unit[i] else repr(unit_uniques[unit_codes[i]]))}"
                f" not accepted for {variables[var_codes[i]]}; expected one of "
                + ", ".join(ACCEPTED_UNITS[variables[var_codes[i]]])
                if bad_unit[i]
                else ""
                for i in np.flatnonzero(bad_unit)
            ],
            dtype=object,
        )
        full = np.empty(n, dtype=object)
        full[bad_unit] = accepted_txt
        problems += _problems_for(
            obs, bad_unit, column="unit", variable_col="variable", expected=full, **common
        )
    problems += _problems_for(
        obs,
        flow,
        column="value",
        variable_col="variable",
        expected="FiO2 as fraction 0.21-1.0 or % 21-100; 1-20 looks like O2 flow in L/min",
        **common,
    )
    if out_of_range.any():
        exp = np.empty(n, dtype=object)
        idx = np.flatnonzero(out_of_range)
        exp[idx] = [
            f"{low[vc[i]]:g}-{high[vc[i]]:g} {PLAUSIBLE_RANGES[variables[vc[i]]].unit}"
            f" after conversion (got {value[i]:.4g})"
            for i in idx
        ]
        problems += _problems_for(
            obs, out_of_range, column="value", variable_col="variable", expected=exp, **common
        )
    problems += _problems_for(
        obs,
        not_integer,
        column="value",
        variable_col="variable",
        expected="an integer GCS total 3-15",
        **common,
    )
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise DataValidationError(problems)

    out = obs.copy(deep=False)
    out["time"] = times
    out["value_as_received"] = raw
    out["unit_as_received"] = obs["unit"]
    out["value"] = value
    unit_names = sorted(set(CANONICAL_UNITS.values()))
    unit_of_var = np.array([unit_names.index(CANONICAL_UNITS[v]) for v in variables])
    out["unit"] = pd.Categorical.from_codes(unit_of_var[var_codes], categories=unit_names)
    return out, var_codes


def normalize_infusions(infusions: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Validate vasoactive infusions and express rates in mcg/kg/min.

    Parameters
    ----------
    infusions
        ``patient_id, drug, start, stop, rate, unit`` (one row per constant-rate segment).
    patients
        ``patient_id, weight_kg``: body weight (kg) used for mcg/min -> mcg/kg/min.

    Returns
    -------
    DataFrame
        A copy with ``rate_mcg_kg_min`` (NaN for drugs SOFA does not score, e.g. vasopressin),
        ``rate_as_received`` and ``unit_as_received``.

    Raises
    ------
    DataValidationError
        Listing every problem: missing times, stop before start, unknown unit for a scored
        drug, mcg/min without a plausible body weight (20-350 kg), negative rate or a rate
        above :data:`PLAUSIBLE_RANGES`. (SRC-MIMIC divides mcg/min by weight.)
    """
    where = "infusions"
    _missing_columns(infusions, INFUSION_COLUMNS, where)
    _missing_columns(patients, ("patient_id", "weight_kg"), "patients")
    n = len(infusions)
    drug = infusions["drug"].astype(object).to_numpy()
    scored = pd.Series(drug).isin(SCORED_DRUGS).to_numpy()
    unit_codes, unit_uniques = pd.factorize(infusions["unit"])
    keys = [unit_key(u) for u in unit_uniques]
    per_weight_lut = np.array([INFUSION_UNITS.get(k or "", None) for k in keys] + [None])
    per_weight = per_weight_lut[unit_codes] if n else np.array([], dtype=object)
    bad_unit = scored & pd.isna(per_weight.astype(object))
    weights = patients.drop_duplicates("patient_id").set_index("patient_id")["weight_kg"]
    w = pd.to_numeric(
        pd.Series(infusions["patient_id"].to_numpy()).map(weights), errors="coerce"
    ).to_numpy(dtype=np.float64, na_value=np.nan)
    rw = PLAUSIBLE_RANGES["weight"]
    needs_weight = scored & ~bad_unit & (per_weight == True)
    bad_weight = needs_weight & ~((w >= rw.low) & (w <= rw.high))
    rate = pd.to_numeric(infusions["rate"], errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    divisor = np.where(needs_weight, w, 1.0)
    rate_kg = np.where(scored & ~bad_unit, rate / divisor, np.nan)
    start = pd.to_datetime(infusions["start"], errors="coerce", cache=False)
    stop = pd.to_datetime(infusions["stop"], errors="coerce", cache=False)
    bad_time = (start.isna() | stop.isna()).to_numpy()
    bad_order = ~bad_time & (stop < start).to_numpy()
    hi = np.array([PLAUSIBLE_RANGES[d].high if d in PLAUSIBLE_RANGES else np.inf for d in drug])
    bad_rate = np.isnan(rate) | (rate < 0)
    too_high = scored & ~bad_unit & ~bad_weight & ~bad_rate & (rate_kg > hi)

    common = {"where": where, "value_col": "rate", "time_col": "start"}
    problems: list[Problem] = []
    problems += _problems_for(
        infusions, bad_time, column="start/stop", expected="start and stop date-times", **common
    )
    problems += _problems_for(
        infusions, bad_order, column="stop", expected="stop at or after start", **common
    )
    problems += _problems_for(
        infusions,
        bad_unit,
        column="unit",
        expected=f"a rate unit in {', '.join(INFUSION_UNITS)}",
        **{**common, "value_col": "unit"},
    )
    problems += _problems_for(
        infusions,
        bad_weight,
        column="weight_kg",
        expected=f"a body weight {rw.low:g}-{rw.high:g} kg in patients for a mcg/min rate",
        **common,
    )
    problems += _problems_for(infusions, bad_rate, column="rate", expected="a rate >= 0", **common)
    if too_high.any():
        exp = np.empty(n, dtype=object)
        idx = np.flatnonzero(too_high)
        exp[idx] = [f"{drug[i]} <= {hi[i]:g} mcg/kg/min (got {rate_kg[i]:.4g})" for i in idx]
        problems += _problems_for(infusions, too_high, column="rate", expected=exp, **common)
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise DataValidationError(problems)
    out = infusions.copy()
    out["start"] = start
    out["stop"] = stop
    out["rate_as_received"] = rate
    out["unit_as_received"] = infusions["unit"]
    out["rate_mcg_kg_min"] = rate_kg
    return out


__all__ = [
    "ACCEPTED_UNITS",
    "BILIRUBIN_UMOL_L_PER_MG_DL",
    "CANONICAL_UNITS",
    "CREATININE_UMOL_L_PER_MG_DL",
    "FIO2_FRACTION_PER_PCT",
    "FIO2_PROBABLE_FLOW_RANGE",
    "INFUSION_COLUMNS",
    "INFUSION_UNITS",
    "KPA_TO_MMHG",
    "LACTATE_MG_DL_PER_MMOL_L",
    "OBSERVATION_COLUMNS",
    "PLAUSIBLE_RANGES",
    "SCORED_DRUGS",
    "PlausibleRange",
    "convert",
    "normalize_infusions",
    "normalize_observations",
    "normalize_observations_coded",
    "unit_key",
]


def stored_scored_rates(infusions: pd.DataFrame) -> pd.DataFrame:
    """Stored infusions with ``rate_mcg_kg_min`` for the scored drugs, as
    :func:`core.derive.derive_daily_sofa` expects: stored rates are already in the drug's
    canonical unit (converted at ingestion), other drugs get none."""
    return infusions.assign(
        rate_mcg_kg_min=infusions["rate"].where(infusions["drug"].isin(SCORED_DRUGS))
    )
