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
  the day before.

Data-quality flags are kept apart (``data_flags``), so they never look like a deterioration:
- ``"<organ> not measured"``: on the shown day, inside the endpoint window and alive, a
  component had no measurement and was imputed (day-1 zero or LOCF): a lab the team can
  still draw for the endpoint.

The endpoint status comes from :func:`core.endpoints.sofa_response` in every case (final,
or "so far" up to the shown day), the same function the patient page uses.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

from core.endpoints import sofa_response
from core.rules import EndpointRules
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_TOTAL

VASOPRESSOR_COLUMNS = (
    "norepinephrine_mcg_kg_min",
    "epinephrine_mcg_kg_min",
    "dopamine_mcg_kg_min",
    "dobutamine_mcg_kg_min",
)
RISE_ALERT_POINTS = 2


class EndpointStatus(StrEnum):
    MET = "met"
    NOT_MET = "not met"
    ON_TRACK = "on track"
    OFF_TRACK = "off track"
    AWAITING = "awaiting day 2"
    NOT_EVALUABLE = "not evaluable"


def _vasopressor_on(frame: pd.DataFrame) -> pd.Series:
    cols = [c for c in VASOPRESSOR_COLUMNS if c in frame.columns]
    if not cols:
        return pd.Series(False, index=frame.index)
    return (frame[cols].fillna(0.0) > 0).any(axis=1)


def ward_snapshot(
    daily: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    as_of_day: int | None = None,
    rules: EndpointRules = EndpointRules(),
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
    d = daily[daily["patient_id"].isin(patients["patient_id"])].copy()
    d = d.sort_values(["patient_id", "study_day"], kind="stable")
    death = patients.set_index("patient_id")["death_study_day"]
    if as_of_day is not None:
        d = d[d["study_day"] <= as_of_day]

    last = d.groupby("patient_id", sort=False).tail(1).set_index("patient_id")
    prev_rows = d.groupby("patient_id", sort=False).nth(-2)
    prev = prev_rows.set_index("patient_id") if len(prev_rows) else last.iloc[0:0]
    prev = prev[prev["study_day"].notna()]
    prev = prev.reindex(last.index)
    adjacent = (last["study_day"] - prev["study_day"]) == 1

    out = pd.DataFrame(index=pd.Index(patients["patient_id"], name="patient_id"))
    out["study_day"] = last["study_day"].reindex(out.index).astype("Int64")
    dd = death.reindex(out.index).astype("Float64")
    horizon = np.inf if as_of_day is None else as_of_day
    out["died"] = (dd.notna() & (dd <= horizon)).fillna(False).astype(bool)
    out["death_study_day"] = dd.astype("Int64")
    out["sofa_total"] = last[SOFA_TOTAL].reindex(out.index).astype("Float64")
    out["sofa_total_prev"] = prev[SOFA_TOTAL].where(adjacent).reindex(out.index).astype("Float64")
    out["sofa_change_24h"] = out["sofa_total"] - out["sofa_total_prev"]
    for c in comp_cols:
        out[c] = last[c].reindex(out.index).astype("Int64")

    # --- alerts ---------------------------------------------------------------------------
    rises = pd.DataFrame(
        {
            o.value: (
                last[SOFA_COLUMNS[o]].astype("Float64") - prev[SOFA_COLUMNS[o]].astype("Float64")
            )
            .where(adjacent)
            .reindex(out.index)
            for o in ORGANS
        }
    )
    new_vaso = (_vasopressor_on(last) & ~_vasopressor_on(prev) & adjacent).reindex(
        out.index, fill_value=False
    )
    imputed_cols = [f"{o.value}_imputed" for o in ORGANS if f"{o.value}_imputed" in d.columns]
    # per row: rising organs (≥ RISE_ALERT_POINTS), largest rise first (ties in organ order)
    organ_names = [o.value for o in ORGANS]
    rise = rises[organ_names].to_numpy(dtype=float, na_value=np.nan)
    rising = np.nan_to_num(rise, nan=0.0) >= RISE_ALERT_POINTS
    order = np.argsort(np.where(rising, -rise, np.inf), axis=1, kind="stable")
    total_rise = out["sofa_change_24h"].to_numpy(dtype=float, na_value=np.nan)
    vaso = new_vaso.to_numpy(dtype=bool)
    shown_day = out["study_day"].to_numpy(dtype=float, na_value=np.nan)
    alive_on_day = ~(dd.to_numpy(dtype=float, na_value=np.inf) <= shown_day)
    in_window = (shown_day <= rules.last_day) & alive_on_day
    today_missing = (
        last[imputed_cols].reindex(out.index).astype("boolean").fillna(False).to_numpy(dtype=bool)
        if imputed_cols
        else np.zeros((len(out), 0), dtype=bool)
    )
    missing_names = [f"{c.removesuffix('_imputed')} not measured" for c in imputed_cols]
    alerts: list[tuple[str, ...]] = []
    flags: list[tuple[str, ...]] = []
    worst: list[str | None] = []
    for i in range(len(out)):
        up = [j for j in order[i] if rising[i, j]]
        items = [f"SOFA +{int(total_rise[i])}"] if total_rise[i] >= RISE_ALERT_POINTS else []
        items += [f"{organ_names[j]} +{int(rise[i, j])}" for j in up]
        worst.append(organ_names[up[0]] if up else None)
        if vaso[i]:
            items.append("new vasopressor")
        alerts.append(tuple(items))
        flags.append(
            tuple(n for n, f in zip(missing_names, today_missing[i], strict=True) if f)
            if in_window[i]
            else ()
        )
    out["alerts"] = alerts
    out["n_alerts"] = [len(a) for a in alerts]
    out["worst_rise_organ"] = worst
    out["data_flags"] = flags

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
