"""Ward board: one row per patient as of a study day, with change, endpoint status and alerts.

Pure pandas over the derived daily SOFA table (``core.derive``) and the patient table. The
clinical rules used here (the SAP primary endpoint, clinical.md 1.5 / SRC-AUDIT) are the same
as in :mod:`core.endpoints`; this module only decides what a ward physician sees *on a given
day*: who is getting worse, in which organ, and whether the endpoint is on track.

Clinical alerts (docs/features.md section 8), worst first:
- ``"SOFA +N"``: the total rose by 2 or more points since the previous study day (the Sepsis-3
  acute change, SRC-SEP3), also when no single organ rose by 2 (two +1 rises);
- ``"<organ> +N"``: a component rose by 2 or more points;
- ``"new vasopressor"``: a qualifying vasopressor/inotrope infusion today that was not there
  the day before;
- ``"vasopressor ↑ <drug> a→b µg/kg/min"``: a drug running on both days whose highest rate
  rose by at least :data:`VASOPRESSOR_ESCALATION_FRACTION` (escalation, [U]: a ward
  convention, not a published cut-off);
- ``"lactate ↑ a→b mmol/L"`` (:func:`lactate_alerts`, the board at a clock time): the highest
  lactate of the last 24 h is above :data:`LACTATE_ALERT_MMOL_L` (Sepsis-3 septic-shock
  criterion, SRC-SEP3) and higher than the highest of the 24 h before.

Data-quality flags are kept apart (``data_flags``), so they never look like a deterioration:
- ``"<organ> not measured"``: on the shown day, inside the endpoint window and alive, a
  component had no measurement and was imputed (day-1 zero or LOCF): a lab the team can
  still draw for the endpoint.

The endpoint status comes from :func:`core.endpoints.sofa_response` in every case (final,
or "so far" up to the shown day), the same function the patient page uses.

"What changed" (:func:`what_changed`): per patient and organ whose score moved since the
previous study day, the deciding variable and its value on both days in the canonical unit
(``"Renal 1→3: creatinine 1.4→3.6 mg/dL"``), from the provenance table of
:mod:`core.derive.provenance`; an imputed day says so instead of showing a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from enum import StrEnum
from types import MappingProxyType
from typing import Final, NamedTuple

import numpy as np
import pandas as pd

from core.concepts import CONCEPTS
from core.derive import derive_daily_sofa
from core.endpoints import sofa_response
from core.rules import EndpointRules, SofaRules
from core.units import unit_key
from core.vocab import ORGAN_SHORT, ORGANS, SOFA_COLUMNS, SOFA_TOTAL, Organ

VASOPRESSOR_COLUMNS = (
    "norepinephrine_mcg_kg_min",
    "epinephrine_mcg_kg_min",
    "dopamine_mcg_kg_min",
    "dobutamine_mcg_kg_min",
)
RISE_ALERT_POINTS = 2
#: escalation: a running vasopressor's highest rate rose by >= 50 % since the day before [U]
VASOPRESSOR_ESCALATION_FRACTION: Final = 0.5
#: rising lactate is an alert above this (Sepsis-3 septic shock: lactate > 2 mmol/L, SRC-SEP3)
LACTATE_ALERT_MMOL_L: Final = 2.0


class EndpointStatus(StrEnum):
    MET = "met"
    NOT_MET = "not met"
    ON_TRACK = "on track"
    OFF_TRACK = "off track"
    AWAITING = "awaiting day 2"
    NOT_EVALUABLE = "not evaluable"


def lactate_alerts(observations: pd.DataFrame, at: pd.Timestamp) -> pd.Series:
    """Rising lactate at the clock time ``at``: per patient with an alert, its text.

    The highest lactate of ``[at - 24 h, at)`` is above :data:`LACTATE_ALERT_MMOL_L` and higher
    than the highest of the 24 h before (a first lactate, with none before, is not "rising").
    ``observations`` in canonical units (``variable == "lactate"``, mmol/L).
    """
    at = pd.Timestamp(at)
    lac = observations[observations["variable"] == "lactate"]
    day = pd.Timedelta(hours=24)
    recent = lac[(lac["time"] >= at - day) & (lac["time"] < at)].groupby("patient_id")["value"]
    before = lac[(lac["time"] >= at - 2 * day) & (lac["time"] < at - day)].groupby("patient_id")
    now_max, prev_max = recent.max(), before["value"].max().reindex(recent.max().index)
    hit = (now_max > LACTATE_ALERT_MMOL_L) & (now_max > prev_max)
    return pd.Series(
        {
            pid: f"lactate ↑ {prev_max[pid]:.1f}→{now_max[pid]:.1f} mmol/L"
            for pid in hit[hit.fillna(False)].index
        },
        dtype=object,
    )


def ward_snapshot(
    daily: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    as_of_day: int | None = None,
    rules: EndpointRules = EndpointRules(),
    endpoint: bool = True,
) -> pd.DataFrame:
    """Ward-board rows as of study day ``as_of_day`` (None: each patient's latest day).

    Parameters
    ----------
    daily
        ``patient_id``, ``study_day``, the six ``sofa_<organ>`` components, ``sofa_total``,
        ``<organ>_imputed`` flags and (optionally) the daily vasopressor input columns.
    patients
        ``patient_id``, ``death_study_day`` (missing if alive), optionally
        ``endpoint_window_closed`` (day ``last_day`` has ended in calendar time at the data
        cut-off: the endpoint is final even if the last charted day is earlier, e.g. after ICU
        discharge; LOCF fills the rest), plus any columns to carry (site, phenotype...).
    endpoint
        False: no ``endpoint_status`` / ``endpoint_decrease`` columns (the rolling 24 h board,
        whose "days" are clock windows, not study days, needs the alerts only).

    Returns
    -------
    DataFrame, one row per patient in ``patients`` order: ``study_day`` (the day shown: the
    requested day, or the patient's last day if earlier), ``died`` (dead by that day),
    ``sofa_total``, ``sofa_total_prev``, ``sofa_change_24h`` (NaN on day 1), the six components,
    ``endpoint_status`` (:class:`EndpointStatus`), ``endpoint_decrease`` (Δ so far or final),
    ``alerts`` (clinical, tuple of strings), ``n_alerts``, ``worst_rise_organ``,
    ``data_flags`` (data quality, tuple), ``death_study_day`` (the day of death, whatever the
    shown day: a patient discharged alive and dead later shows their last charted day).
    Patients without any daily row get ``study_day`` missing and status "not evaluable".
    """
    comp_cols = [SOFA_COLUMNS[o] for o in ORGANS]
    # positional NumPy over the sorted rows (one frame built at the end): the per-column
    # pandas assignments and reindexing this replaces were most of a board (docs/ward.md)
    d = daily[daily["patient_id"].isin(patients["patient_id"])]
    if as_of_day is not None:
        d = d[d["study_day"] <= as_of_day]
    d = d.sort_values(["patient_id", "study_day"], kind="stable")
    ids = pd.Index(patients["patient_id"], name="patient_id")
    n = len(ids)
    pid = d["patient_id"].to_numpy(dtype=object)
    day = d["study_day"].to_numpy(dtype=float, na_value=np.nan)
    is_last = np.ones(len(d), dtype=bool)
    if len(d):
        is_last[:-1] = pid[1:] != pid[:-1]
    last_pos = np.flatnonzero(is_last)
    # the row before a patient's last row, when it is the same patient's with a study day
    prev_pos = last_pos - 1
    has_prev = prev_pos >= 0
    has_prev[has_prev] = pid[prev_pos[has_prev]] == pid[last_pos[has_prev]]
    has_prev[has_prev] = ~np.isnan(day[prev_pos[has_prev]])
    # per output row: position of its last / previous row in ``d`` (-1: none)
    where = pd.Index(pid[last_pos]).get_indexer(ids) if len(d) else np.full(n, -1)
    found = where >= 0
    last_at = np.full(n, -1)
    last_at[found] = last_pos[where[found]]
    prev_at = np.full(n, -1)
    ok_prev = found.copy()
    ok_prev[found] = has_prev[where[found]]
    prev_at[ok_prev] = prev_pos[where[ok_prev]]

    def take(values: np.ndarray, at: np.ndarray) -> np.ndarray:
        """``values`` (float) at the positions ``at``; NaN where there is no row."""
        out = np.full(n, np.nan)
        hit = at >= 0
        out[hit] = values[at[hit]]
        return out

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(d[name], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    shown_day = take(day, last_at)
    adjacent = (shown_day - take(day, prev_at)) == 1
    death = patients.set_index("patient_id")["death_study_day"]
    dd = pd.to_numeric(death.reindex(ids), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    horizon = np.inf if as_of_day is None else as_of_day
    total = col(SOFA_TOTAL)
    sofa_total = take(total, last_at)
    sofa_prev = np.where(adjacent, take(total, prev_at), np.nan)
    total_rise = sofa_total - sofa_prev
    columns: dict[str, object] = {
        "study_day": pd.array(shown_day, dtype="Int64"),
        "died": ~np.isnan(dd) & (dd <= horizon),
        "death_study_day": pd.array(dd, dtype="Int64"),
        "sofa_total": pd.array(sofa_total, dtype="Float64"),
        "sofa_total_prev": pd.array(sofa_prev, dtype="Float64"),
        "sofa_change_24h": pd.array(total_rise, dtype="Float64"),
    }
    organ_names = [o.value for o in ORGANS]
    rise = np.empty((n, len(ORGANS)))
    for j, c in enumerate(comp_cols):
        values = col(c)
        now = take(values, last_at)
        columns[c] = pd.array(now, dtype="Int64")
        rise[:, j] = np.where(adjacent, now - take(values, prev_at), np.nan)

    # --- alerts ---------------------------------------------------------------------------
    vaso_cols = [c for c in VASOPRESSOR_COLUMNS if c in d.columns]
    vaso_now = np.zeros(n, dtype=bool)
    vaso_before = np.zeros(n, dtype=bool)
    escalating: list[list[str]] = [[] for _ in range(n)]
    for c in vaso_cols:
        values = col(c)
        now, before = take(values, last_at), take(values, prev_at)
        vaso_now |= np.nan_to_num(now) > 0
        vaso_before |= np.nan_to_num(before) > 0
        before = np.where(adjacent, before, np.nan)
        # compared at 1e-6 µg/kg/min: 0.10 -> 0.15 is +50 % exactly (binary floating point
        # makes 0.10 x 1.5 = 0.15000000000000002)
        with np.errstate(invalid="ignore"):
            threshold = np.round(before * (1 + VASOPRESSOR_ESCALATION_FRACTION), 6)
            up = (before > 0) & (np.round(now, 6) >= threshold)
        drug = c.removesuffix("_mcg_kg_min")
        for i in np.flatnonzero(up):
            escalating[i].append(f"vasopressor ↑ {drug} {before[i]:.2f}→{now[i]:.2f} µg/kg/min")
    vaso = vaso_now & ~vaso_before & adjacent
    imputed_cols = [f"{o.value}_imputed" for o in ORGANS if f"{o.value}_imputed" in d.columns]
    # per row: rising organs (≥ RISE_ALERT_POINTS), largest rise first (ties in organ order)
    rising = np.nan_to_num(rise, nan=0.0) >= RISE_ALERT_POINTS
    order = np.argsort(np.where(rising, -rise, np.inf), axis=1, kind="stable")
    alive_on_day = ~(np.nan_to_num(dd, nan=np.inf) <= shown_day)
    with np.errstate(invalid="ignore"):
        in_window = (shown_day <= rules.last_day) & alive_on_day
    today_missing = np.zeros((n, len(imputed_cols)), dtype=bool)
    for j, c in enumerate(imputed_cols):
        flag = d[c].astype("boolean").fillna(False).to_numpy(dtype=bool)
        hit = last_at >= 0
        today_missing[hit, j] = flag[last_at[hit]]
    missing_names = [f"{c.removesuffix('_imputed')} not measured" for c in imputed_cols]
    alerts: list[tuple[str, ...]] = []
    flags: list[tuple[str, ...]] = []
    worst: list[str | None] = []
    for i in range(n):
        up = [j for j in order[i] if rising[i, j]]
        items = [f"SOFA +{int(total_rise[i])}"] if total_rise[i] >= RISE_ALERT_POINTS else []
        items += [f"{organ_names[j]} +{int(rise[i, j])}" for j in up]
        worst.append(organ_names[up[0]] if up else None)
        if vaso[i]:
            items.append("new vasopressor")
        items += escalating[i]
        alerts.append(tuple(items))
        flags.append(
            tuple(m for m, f in zip(missing_names, today_missing[i], strict=True) if f)
            if in_window[i]
            else ()
        )
    columns["alerts"] = alerts
    columns["n_alerts"] = [len(a) for a in alerts]
    columns["worst_rise_organ"] = worst
    columns["data_flags"] = flags
    out = pd.DataFrame(columns, index=ids)
    if not endpoint:
        carry = patients.set_index("patient_id").drop(columns=["death_study_day"], errors="ignore")
        return out.join(carry, how="left").reset_index()
    dd = pd.Series(pd.array(dd, dtype="Float64"), index=ids)

    # --- endpoint status ----------------------------------------------------------------
    out["endpoint_status"] = EndpointStatus.NOT_EVALUABLE.value
    out["endpoint_decrease"] = np.nan
    baseline = d[d["study_day"] == 1].set_index("patient_id")
    day1_all_imputed = (
        baseline[imputed_cols].all(axis=1)
        if imputed_cols
        else pd.Series(False, index=baseline.index)
    )
    evaluable = out.index.isin(baseline.index) & ~day1_all_imputed.reindex(
        out.index, fill_value=True
    )
    closed = np.zeros(len(out), dtype=bool)
    if as_of_day is None and "endpoint_window_closed" in patients.columns:
        closed = (
            patients.set_index("patient_id")["endpoint_window_closed"]
            .reindex(out.index)
            .fillna(False)
            .astype(bool)
            .to_numpy()
        )
    final_mask = evaluable & (
        (out["study_day"].fillna(0).to_numpy() >= rules.last_day) | out["died"].to_numpy() | closed
    )
    if final_mask.any():
        ids = out.index[final_mask]
        resp = sofa_response(
            d[d["patient_id"].isin(ids)],
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "death_study_day": dd.reindex(ids).to_numpy(dtype=float, na_value=np.nan),
                }
            ),
            last_day=rules.last_day,
            threshold=rules.threshold,
            death_score=rules.death_score,
        ).set_index("patient_id")
        out.loc[ids, "endpoint_decrease"] = resp["sofa_decrease"].reindex(ids).to_numpy()
        out.loc[ids, "endpoint_status"] = np.where(
            resp["responder"].reindex(ids).fillna(False).astype(bool),
            EndpointStatus.MET.value,
            EndpointStatus.NOT_MET.value,
        )
    running_mask = evaluable & ~final_mask
    if running_mask.any():
        # the endpoint so far: the same function, with the window closing on the shown day
        ids = out.index[running_mask]
        days = out.loc[ids, "study_day"].astype(int)
        for shown, group in days.groupby(days):
            sub = group.index
            if shown < 2:
                out.loc[sub, "endpoint_status"] = EndpointStatus.AWAITING.value
                continue
            resp = sofa_response(
                d[d["patient_id"].isin(sub)],
                pd.DataFrame(
                    {
                        "patient_id": sub,
                        "death_study_day": dd.reindex(sub).to_numpy(dtype=float, na_value=np.nan),
                    }
                ),
                last_day=int(shown),
                threshold=rules.threshold,
                death_score=rules.death_score,
            ).set_index("patient_id")
            delta = resp["sofa_decrease"].reindex(sub)
            out.loc[sub, "endpoint_decrease"] = delta.to_numpy()
            out.loc[sub, "endpoint_status"] = np.where(
                (delta > rules.threshold).to_numpy(),
                EndpointStatus.ON_TRACK.value,
                EndpointStatus.OFF_TRACK.value,
            )

    carry = patients.set_index("patient_id").drop(columns=["death_study_day"], errors="ignore")
    out = out.join(carry, how="left")
    return out.reset_index()


# --- what changed -----------------------------------------------------------------------------


class ChangeVariable(NamedTuple):
    """How a deciding variable is shown in a "what changed" text."""

    label: str
    #: daily-table column holding the day's deciding value in the canonical unit (None: the
    #: provenance value is already canonical, e.g. the pre-sedation GCS)
    daily_column: str | None
    unit: str
    #: decimals shown (trailing zeros dropped): the resolution that keeps a value on the right
    #: side of its SOFA cut-off (creatinine 1.95 is not "2.0"; norepinephrine 0.095 not "0.1")
    digits: int


#: deciding variable (provenance ``variable``) -> display; units from core.concepts
CHANGE_VARIABLES: Final = MappingProxyType(
    {
        "pao2": ChangeVariable("P/F", "pao2_fio2_mmhg", "mmHg", 0),
        "platelets": ChangeVariable("platelets", "platelets_10e3_per_ul", "10^3/uL", 0),
        "bilirubin": ChangeVariable("bilirubin", "bilirubin_mg_dl", "mg/dL", 2),
        "creatinine": ChangeVariable("creatinine", "creatinine_mg_dl", "mg/dL", 2),
        "urine_output": ChangeVariable("urine", "urine_output_ml_24h", "mL/24 h", 0),
        "map": ChangeVariable("MAP", "map_mmhg", "mmHg", 0),
        "gcs_total": ChangeVariable("GCS", None, "", 0),
        "norepinephrine": ChangeVariable(
            "norepinephrine", "norepinephrine_mcg_kg_min", "mcg/kg/min", 3
        ),
        "epinephrine": ChangeVariable("epinephrine", "epinephrine_mcg_kg_min", "mcg/kg/min", 3),
        "dopamine": ChangeVariable("dopamine", "dopamine_mcg_kg_min", "mcg/kg/min", 2),
        "dobutamine": ChangeVariable("dobutamine", "dobutamine_mcg_kg_min", "mcg/kg/min", 2),
    }
)
#: what an imputed day says instead of a number (never an imputed value shown as measured)
IMPUTED_PHRASES: Final = MappingProxyType(
    {"locf": "not measured, carried forward", "day1_zero": "not measured, scored 0"}
)
NOT_MEASURED = "not measured"
NO_VALUE = "no deciding value"
#: columns of :func:`what_changed`
CHANGE_COLUMNS: Final = (
    "patient_id",
    "organ",
    "study_day",
    "previous_day",
    "score_before",
    "score_after",
    "change",
    "variable",
    "variable_before",
    "value_before",
    "value_after",
    "unit",
    "unit_before",
    "imputed_before",
    "imputed_after",
    "text",
)


def _fmt_numbers(values: np.ndarray, digits: np.ndarray) -> np.ndarray:
    """``values`` as text with ``digits`` decimals, trailing zeros dropped (vectorised)."""
    out = np.full(values.size, "", dtype=object)
    for d in np.unique(digits):
        hit = (digits == d) & ~np.isnan(values)
        if hit.any():
            out[hit] = np.char.mod(f"%.{int(d)}f", np.round(values[hit], int(d)) + 0.0)
    s = pd.Series(out, dtype=object)
    frac = s.str.contains(".", regex=False)
    s[frac] = s[frac].str.rstrip("0").str.rstrip(".")
    return s.replace("-0", "0").to_numpy(dtype=object)


def _canonical(day_rows: pd.DataFrame, daily: pd.DataFrame | None) -> pd.DataFrame:
    """Label, canonical value, unit and decimals of each provenance row's deciding value.

    With ``daily``: the day's value of the variable in the canonical unit (the derivation's
    worst value of the day, which is the deciding one: P/F, urine per 24 h, drug rate per kg).
    Without it (or where that is missing): the provenance value as received, converted with
    the concept's factor; a per-weight drug unit (mcg/min) cannot be converted without the
    weight and keeps its received unit, labelled as such.
    """
    var = day_rows["variable"].astype(object).where(day_rows["variable"].notna(), None)
    received = pd.to_numeric(day_rows["value"], errors="coerce").to_numpy(dtype=float)
    unit_in = day_rows["unit"].astype(object).to_numpy()
    n = len(day_rows)
    label = var.to_numpy(dtype=object).copy()
    unit = np.array([u if isinstance(u, str) else "" for u in unit_in], dtype=object)
    value = received.copy()
    digits = np.full(n, 2, dtype=np.int64)
    daily_vals = None
    if daily is not None and len(daily):
        keys = day_rows[["patient_id", "study_day"]].astype({"study_day": "int64"})
        cols = [c.daily_column for c in CHANGE_VARIABLES.values() if c.daily_column in daily]
        daily_vals = keys.merge(
            daily[["patient_id", "study_day", *cols]].astype({"study_day": "int64"}),
            on=["patient_id", "study_day"],
            how="left",
        )
    keys_unit = pd.Series(unit_in, dtype=object).map(
        lambda u: unit_key(u) if isinstance(u, str) else None
    )
    for name, show in CHANGE_VARIABLES.items():
        hit = (var == name).to_numpy()
        if not hit.any():
            continue
        label[hit] = show.label
        digits[hit] = show.digits
        conc = CONCEPTS.get(name)
        # as received, converted with the concept's factor where the unit is a known one
        factor = (
            keys_unit[hit].map(dict(conc.units)).to_numpy(dtype=float, na_value=np.nan)
            if conc is not None
            else np.full(int(hit.sum()), np.nan)
        )
        conv = received[hit] * factor
        conv_ok = ~np.isnan(factor)
        v = np.where(conv_ok, conv, received[hit])
        u = np.where(conv_ok, conc.unit if conc is not None else "", unit[hit]).astype(object)
        if name == "pao2":  # without the daily P/F: PaO2, not P/F
            label[hit] = "PaO2"
        if daily_vals is not None and show.daily_column in daily_vals:
            dv = pd.to_numeric(daily_vals.loc[hit, show.daily_column], errors="coerce").to_numpy(
                dtype=float
            )
            have = ~np.isnan(dv)
            v = np.where(have, dv, v)
            u = np.where(have, show.unit, u).astype(object)
            if name == "pao2":
                label[hit] = np.where(have, show.label, "PaO2")
        if show.daily_column is None:
            u = np.full(int(hit.sum()), show.unit, dtype=object)
        value[hit] = v
        unit[hit] = u
    return pd.DataFrame(
        {"label": label, "value": value, "unit": unit, "digits": digits}, index=day_rows.index
    )


def _side_text(
    label: pd.Series, number: pd.Series, unit: pd.Series, imputed: pd.Series, kind: pd.Series
) -> pd.Series:
    """One day's deciding value: ``"creatinine 3.6 mg/dL"``, or what stood in for it."""
    measured = (label.fillna("") + " " + number + " " + unit).str.strip()
    phrase = kind.map(dict(IMPUTED_PHRASES)).fillna(NOT_MEASURED)
    has_value = number != ""
    return pd.Series(
        np.where(imputed, phrase, np.where(has_value, measured, NO_VALUE)), index=label.index
    )


def what_changed(
    provenance: pd.DataFrame,
    *,
    day: int | pd.Series,
    previous_day: int | None = None,
    daily: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per patient and organ whose SOFA score moved from ``previous_day`` to ``day``: one row.

    Parameters
    ----------
    provenance
        Long provenance (``patient_id, study_day, organ, score, variable, value, unit,
        imputed, imputation``; :func:`core.derive.derive_daily_sofa` ``.provenance`` or the
        stored ``sofa_provenance``), any number of patients.
    day, previous_day
        The day shown and the day compared with (default ``day - 1``; none before day 1).
        ``day`` may also be a Series patient_id -> day (each patient's own shown day, compared
        with the day before; ``previous_day`` is then ignored).
    daily
        Optional daily SOFA of the same patients: the deciding values are then taken in the
        canonical unit from it (P/F instead of PaO2, urine per 24 h, drug rates per kg for a
        rate received in mcg/min). Without it the received value is converted with the
        concept's factor where possible, else shown in its received unit.

    Returns
    -------
    DataFrame (:data:`CHANGE_COLUMNS`), largest change first per patient (rises before falls
    on ties, then organ order): ``score_before``, ``score_after``, ``change``, ``variable``
    (of ``day``) and ``variable_before``, ``value_before`` / ``value_after`` in ``unit`` /
    ``unit_before`` (NaN for an imputed day: never an imputed value as a measured one),
    ``imputed_before`` / ``imputed_after`` and ``text``, e.g.
    ``"Renal 1→3: creatinine 1.4→3.6 mg/dL"``, ``"CV 1→3: MAP 62 mmHg → dopamine 6
    mcg/kg/min"``, ``"Resp 1→2: not measured, carried forward → P/F 280 mmHg"``.
    A patient without a row on either day, or without a score change, has no row.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in CHANGE_COLUMNS})
    if provenance.empty:
        return empty
    if isinstance(day, pd.Series):  # a day per patient (the board's "latest": each own day)
        day_of = provenance["patient_id"].map(day).to_numpy(dtype=float, na_value=np.nan)
        prev_of = day_of - 1
    else:
        prev = day - 1 if previous_day is None else previous_day
        if prev < 1 or prev == day:
            return empty
        day_of = np.full(len(provenance), float(day))
        prev_of = np.full(len(provenance), float(prev))
    sd = provenance["study_day"].to_numpy(dtype=float)
    is_after = sd == day_of
    is_before = (sd == prev_of) & (prev_of >= 1)
    p = provenance[is_after | is_before].assign(
        _after=is_after[is_after | is_before],
        _day=day_of[is_after | is_before],
        _prev=prev_of[is_after | is_before],
    )
    score = pd.to_numeric(p["score"], errors="coerce")
    p = p[score.notna()]
    # only the (patient, organ) pairs whose score moved get their values looked up
    wide = (
        pd.DataFrame(
            {
                "k": p["patient_id"].astype(str) + "\x1f" + p["organ"].astype(str),
                "d": p["_after"].to_numpy(),
                "s": score[score.notna()].to_numpy(dtype=float),
            }
        )
        .drop_duplicates(["k", "d"])
        .pivot(index="k", columns="d", values="s")
    )
    if True not in wide.columns or False not in wide.columns:
        return empty
    moved = wide.index[(wide[True] != wide[False]) & wide[True].notna() & wide[False].notna()]
    p = p[(p["patient_id"].astype(str) + "\x1f" + p["organ"].astype(str)).isin(moved)]
    if p.empty:
        return empty
    shown = _canonical(p, daily)
    imputed = p["imputed"].astype("boolean").fillna(False).astype(bool)
    frame = pd.DataFrame(
        {
            "patient_id": p["patient_id"].to_numpy(),
            "organ": p["organ"].astype(str).to_numpy(),
            "study_day": p["study_day"].astype("int64").to_numpy(),
            "score": pd.to_numeric(p["score"]).astype(float).to_numpy(),
            "variable": p["variable"].astype(object).where(p["variable"].notna(), None).to_numpy(),
            "label": shown["label"].to_numpy(),
            # an imputed day has no deciding value of its own: never shown as a number
            "value": np.where(imputed.to_numpy(), np.nan, shown["value"].to_numpy(dtype=float)),
            "unit": shown["unit"].to_numpy(),
            "digits": shown["digits"].to_numpy(),
            "imputed": imputed.to_numpy(),
            "imputation": p["imputation"].astype(object).to_numpy() if "imputation" in p else None,
        }
    )
    key = ["patient_id", "organ"]
    after = frame[p["_after"].to_numpy()].drop_duplicates(key)
    before = frame[~p["_after"].to_numpy()].drop_duplicates(key)
    m = after.merge(before, on=key, suffixes=("_a", "_b"))
    m = m[m["score_a"] != m["score_b"]].reset_index(drop=True)
    if m.empty:
        return empty

    num_b = pd.Series(_fmt_numbers(m["value_b"].to_numpy(float), m["digits_b"].to_numpy()))
    num_a = pd.Series(_fmt_numbers(m["value_a"].to_numpy(float), m["digits_a"].to_numpy()))
    side_b = _side_text(m["label_b"], num_b, m["unit_b"], m["imputed_b"], m["imputation_b"])
    side_a = _side_text(m["label_a"], num_a, m["unit_a"], m["imputed_a"], m["imputation_a"])
    same = (
        (m["label_a"] == m["label_b"])
        & (m["unit_a"] == m["unit_b"])
        & (num_a != "")
        & (num_b != "")
    )
    joined = (m["label_a"] + " " + num_b + "→" + num_a + " " + m["unit_a"]).str.strip()
    body = pd.Series(np.where(same, joined, side_b + " → " + side_a))
    short = m["organ"].map({o.value: ORGAN_SHORT[o] for o in Organ})
    s_b = m["score_b"].astype(int).astype(str)
    s_a = m["score_a"].astype(int).astype(str)
    text = short + " " + s_b + "→" + s_a + ": " + body

    change = (m["score_a"] - m["score_b"]).astype(int)
    organ_rank = m["organ"].map({o.value: i for i, o in enumerate(ORGANS)})
    out = pd.DataFrame(
        {
            "patient_id": m["patient_id"],
            "organ": m["organ"],
            "study_day": m["study_day_a"].astype(int),
            "previous_day": m["study_day_b"].astype(int),
            "score_before": m["score_b"].astype(int),
            "score_after": m["score_a"].astype(int),
            "change": change,
            "variable": m["variable_a"],
            "variable_before": m["variable_b"],
            "value_before": m["value_b"].astype(float),
            "value_after": m["value_a"].astype(float),
            "unit": m["unit_a"],
            "unit_before": m["unit_b"],
            "imputed_before": m["imputed_b"].astype(bool),
            "imputed_after": m["imputed_a"].astype(bool),
            "text": text,
            "_abs": change.abs(),
            "_rank": organ_rank,
        }
    )
    out = out.sort_values(
        ["patient_id", "_abs", "change", "_rank"],
        ascending=[True, False, False, True],
        kind="stable",
    )
    return out.drop(columns=["_abs", "_rank"]).reset_index(drop=True)[list(CHANGE_COLUMNS)]


def change_texts(changes: pd.DataFrame, patient_ids: pd.Index | pd.Series) -> pd.Series:
    """Per patient (in ``patient_ids`` order): the tuple of :func:`what_changed` texts, largest
    change first; ``()`` for a patient without a change."""
    grouped = changes.groupby("patient_id", sort=False)["text"].agg(tuple)
    ids = pd.Index(patient_ids)
    return pd.Series([grouped.get(pid, ()) for pid in ids], index=ids, name="changes", dtype=object)


# --- the board at a clock time: SOFA over the last 24 hours ---------------------------------

#: days of history the rolling board derives, so that a component not measured in the last
#: 24 h is carried forward from the days before (LOCF, flagged) exactly as in the daily score
ROLLING_LOOKBACK_DAYS: Final = 7
NO_RECENT_DATA: Final = "no SOFA data in the last 24 h"
#: rolling-board columns (the organ components follow SOFA_COLUMNS)
ROLLING_COLUMNS: Final = (
    "patient_id",
    "sofa_24h",
    "sofa_24h_prev",
    "sofa_24h_change",
    "alerts",
    "n_alerts",
    "worst_rise_organ",
    "data_flags",
)


def rolling_sofa(
    observations: pd.DataFrame,
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    at: pd.Timestamp,
    rules: SofaRules = SofaRules(),
    lookback_days: int = ROLLING_LOOKBACK_DAYS,
) -> pd.DataFrame:
    """SOFA of the 24 hours ending at ``at`` and of the 24 hours before, per patient.

    Not a second scorer: :func:`core.derive.derive_daily_sofa` (worst values, the same
    ``rules``) runs on a clock anchored at ``at - lookback_days·24 h`` with the rolling 24 h
    day rule, so day ``lookback_days`` is ``[at - 24 h, at)`` and the day before is the
    previous 24 hours. Only the past is used: raw rows must end before ``at`` (see
    :func:`core.repository.load_raw_window`), and a death after ``at`` is unknown at ``at``.

    Returns
    -------
    DataFrame
        The daily rows (``study_day`` = window day, components, ``sofa_total``, imputation
        flags, vasopressor inputs) of the last two window days, for the patients who have any.
    """
    at = pd.Timestamp(at)
    window_rules = replace(
        rules, study_day="rolling_24h_from_first_dose", max_study_day=lookback_days
    )
    pts = patients.assign(anchor_time=at - pd.Timedelta(days=lookback_days), death_time=pd.NaT)
    daily = derive_daily_sofa(
        observations, infusions, episodes, pts, rules=window_rules, provenance=False
    ).daily
    return daily[daily["study_day"] >= lookback_days - 1].reset_index(drop=True)


def rolling_board(
    window_daily: pd.DataFrame,
    patient_ids: pd.Series | list[str],
    *,
    lookback_days: int = ROLLING_LOOKBACK_DAYS,
    no_previous: Iterable[str] = (),
) -> pd.DataFrame:
    """Alerts and flags of the last 24 hours (:data:`ROLLING_COLUMNS` + the components).

    The same alert rules as the daily board (:func:`ward_snapshot`: Sepsis-3 total rise,
    organ rises, new vasopressor; data flags apart), applied to the last 24 h against the 24 h
    before. A patient without any SOFA input in the last 24 h gets no score (never an old
    day's score shown as current) and the flag :data:`NO_RECENT_DATA`. ``no_previous``: the
    patients whose previous 24 h lie before their ICU admission; they, and every patient with
    nothing measured in the previous 24 h, get no change and no rise alert (a zero-imputed
    day is not a baseline).
    """
    ids = pd.Series(list(patient_ids), dtype=object)
    skip = set(no_previous)
    # a previous 24 h with nothing measured (every component imputed) is no baseline either:
    # a zero-imputed day must never make a rise (missing data are not "normal")
    flags = [f"{o.value}_imputed" for o in ORGANS if f"{o.value}_imputed" in window_daily]
    prev_rows = window_daily[window_daily["study_day"] == lookback_days - 1]
    if flags and len(prev_rows):
        unmeasured = prev_rows[flags].astype("boolean").fillna(True).all(axis=1)
        skip |= set(prev_rows.loc[unmeasured.to_numpy(dtype=bool), "patient_id"])
    if skip:
        prev_day = window_daily["study_day"] == lookback_days - 1
        window_daily = window_daily[~(prev_day & window_daily["patient_id"].isin(skip))]
    recent = window_daily[window_daily["study_day"] == lookback_days]["patient_id"]
    snap = ward_snapshot(
        window_daily,
        pd.DataFrame({"patient_id": ids, "death_study_day": np.nan}),
        as_of_day=lookback_days,
        rules=EndpointRules(last_day=lookback_days),
        endpoint=False,
    ).set_index("patient_id")
    out = pd.DataFrame(index=pd.Index(ids, name="patient_id"))
    stale = ~out.index.isin(recent)
    comp_cols = [SOFA_COLUMNS[o] for o in ORGANS]
    out["sofa_24h"] = snap["sofa_total"].mask(stale)
    out["sofa_24h_prev"] = snap["sofa_total_prev"].mask(stale)
    out["sofa_24h_change"] = snap["sofa_change_24h"].mask(stale)
    for c in comp_cols:
        out[c] = snap[c].mask(stale)
    out["alerts"] = [() if s else a for a, s in zip(snap["alerts"], stale, strict=True)]
    out["n_alerts"] = [len(a) for a in out["alerts"]]
    out["worst_rise_organ"] = snap["worst_rise_organ"].mask(stale)
    out["data_flags"] = [
        (NO_RECENT_DATA,) if s else f for f, s in zip(snap["data_flags"], stale, strict=True)
    ]
    return out.reset_index()
