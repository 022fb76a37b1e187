"""The ward board's rows: one site's patients as of a study day (core.ward.ward_snapshot), with
what changed since the day before (core.ward.what_changed over the stored provenance)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.data.cohort import cohort_patients, visible_patients
from components.data.keys import Context
from components.server.cache import cache
from components.server.context import engine, settings
from core.phenotype import classify_frame
from core.repository import (
    DEPARTURE_COLUMNS,
    icu_census,
    icu_departures,
    load_daily_sofa,
    load_icu_stays,
    load_patients,
    load_provenance_days,
    load_raw_window,
)
from core.time import replay_span, replay_time, study_day
from core.vocab import ORGANS, SOFA_COLUMNS, SOFA_TOTAL
from core.ward import (
    ROLLING_LOOKBACK_DAYS,
    EndpointStatus,
    change_texts,
    lactate_alerts,
    rolling_board,
    rolling_sofa,
    ward_snapshot,
    what_changed,
)

#: patient columns the board carries next to the daily SOFA
CARRY_COLUMNS = (
    "patient_id",
    "site_id",
    "death_study_day",
    "phenotype",
    "phenotype_reason",
    "near_threshold",
    # the endpoint is final once day 9 has passed at the data cut-off (LOCF fills the rest),
    # exactly as on the patient page
    "endpoint_window_closed",
)


def site_counts(ctx: Context) -> list[tuple[str, int]]:
    """(site, visible patients) for the site picker."""
    counts = visible_patients(ctx).groupby("site_id").size()
    return [(str(site), int(n)) for site, n in counts.items()]


def census_counts(ctx: Context, at: pd.Timestamp) -> dict[str, int]:
    """Patients in the ICU at ``at`` per site of the context (the census rule,
    :func:`core.repository.icu_census`); sites with nobody in are left out."""
    return dict(_census_counts(ctx.shared(), pd.Timestamp(at).floor("s"), ctx.sites))


@cache.memoize()
def _census_counts(
    ctx: Context, at: pd.Timestamp, sites: tuple[str, ...] | None
) -> tuple[tuple[str, int], ...]:
    census = icu_census(engine(), at)
    if sites is not None:
        census = census[census["site_id"].isin(sites)]
    counts = census.groupby("site_id").size()
    return tuple((str(site), int(n)) for site, n in counts.items())


@cache.memoize()
def _ward(ctx: Context, site_id: str, as_of_day: int | None) -> pd.DataFrame:
    patients = cohort_patients(ctx)
    patients = patients[patients["site_id"] == site_id]
    daily = load_daily_sofa(engine(), rules_key=ctx.sofa_rules.key(), site_id=site_id)
    carry = patients[list(CARRY_COLUMNS)]
    board = ward_snapshot(daily, carry, as_of_day=as_of_day, rules=ctx.endpoint_rules)
    changes = site_changes(ctx, daily, board)
    board["changes"] = change_texts(changes, pd.Index(board["patient_id"])).to_numpy()
    return _without_trial_endpoint(board, patients)


def _without_trial_endpoint(board: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """No endpoint for patients who are not trial participants (ward patients only): the
    status is empty, never "not evaluable" or a Δ of a trial they are not in."""
    trial = board["patient_id"].map(patients.set_index("patient_id")["trial_participant"])
    outside = trial.eq(False).to_numpy()
    board["endpoint_status"] = board["endpoint_status"].astype(object)
    board.loc[outside, "endpoint_status"] = None
    board.loc[outside, "endpoint_decrease"] = np.nan
    return board


def moved_patients(daily: pd.DataFrame, board: pd.DataFrame) -> pd.Series:
    """Shown day per patient whose components differ from the day before (patient_id index):
    only their provenance is read."""
    shown = board[["patient_id", "study_day"]].dropna()
    comp = [SOFA_COLUMNS[o] for o in ORGANS]
    today = shown.merge(daily[["patient_id", "study_day", *comp]], on=["patient_id", "study_day"])
    before = shown.assign(study_day=shown["study_day"] - 1).merge(
        daily[["patient_id", "study_day", *comp]], on=["patient_id", "study_day"]
    )
    pair = today.merge(before, on="patient_id", suffixes=("", "_b"))
    moved = pd.Series(False, index=pair.index)
    for c in comp:
        moved |= pair[c].astype("Float64").ne(pair[f"{c}_b"].astype("Float64")).fillna(False)
    pair = pair[moved]
    return pd.Series(pair["study_day"].astype(int).to_numpy(), index=pair["patient_id"].to_numpy())


def site_changes(ctx: Context, daily: pd.DataFrame, board: pd.DataFrame) -> pd.DataFrame:
    """core.ward.what_changed for the board's shown day of each patient whose score moved
    (their provenance of the shown day and the day before, read in bulk)."""
    days = moved_patients(daily, board)
    wanted = pd.concat([days, days - 1])
    prov = load_provenance_days(engine(), wanted, rules_key=ctx.sofa_rules.key())
    return what_changed(prov, day=days, daily=daily)


def ward_board(ctx: Context, site_id: str, as_of_day: int | None) -> pd.DataFrame:
    """Ward rows for one site as of a study day; empty when the site is not the context's."""
    if ctx.sites is not None and site_id not in ctx.sites:
        return pd.DataFrame()
    return _ward(ctx.shared(), site_id, as_of_day).copy()


# --- the board at a clock time (ICU census, SOFA over the last 24 hours) ----------------------

#: board-at-a-time columns, in API order (the six organ components follow ``sofa_24h_change``)
AT_COLUMNS = (
    "patient_id",
    "site_id",
    "unit",
    "bed",
    "icu_admission_time",
    "sofa_24h",
    "sofa_24h_change",
    *(SOFA_COLUMNS[o] for o in ORGANS),
    "alerts",
    "data_flags",
    "phenotype",
    "phenotype_reason",
    "near_threshold",
    "study_day",
    "endpoint_status",
    "endpoint_decrease",
)


def board_at(ctx: Context, at: pd.Timestamp, site_id: str | None = None) -> pd.DataFrame:
    """The patients in the ICU at ``at`` (the context's sites; one site or all), with SOFA over
    the 24 h ending at ``at``, alerts and flags (:func:`core.ward.rolling_board`), phenotype,
    and for trial participants the study day at ``at`` and the endpoint status known then."""
    if site_id is not None and ctx.sites is not None and site_id not in ctx.sites:
        return pd.DataFrame(columns=list(AT_COLUMNS))
    return _board_at(ctx.shared(), pd.Timestamp(at).floor("s"), site_id, ctx.sites).copy()


@cache.memoize()
def _board_at(
    ctx: Context, at: pd.Timestamp, site_id: str | None, sites: tuple[str, ...] | None
) -> pd.DataFrame:
    census = icu_census(engine(), at, site_id=site_id)
    if sites is not None:
        census = census[census["site_id"].isin(sites)]
    if census.empty:
        return pd.DataFrame(columns=list(AT_COLUMNS))
    ids = census["patient_id"].tolist()
    raw = load_raw_window(
        engine(), ids, start=at - pd.Timedelta(days=ROLLING_LOOKBACK_DAYS), stop=at
    )
    window = rolling_sofa(
        raw.observations, raw.infusions, raw.episodes, raw.patients, at=at, rules=ctx.sofa_rules
    )
    # admitted within the last 24 h: the 24 h before are not an ICU baseline
    new = census.loc[census["icu_admission_time"] > at - pd.Timedelta(hours=24), "patient_id"]
    board = rolling_board(window, ids, no_previous=new).set_index("patient_id")
    lactate = lactate_alerts(raw.observations, at)
    board["alerts"] = [
        (*alerts, lactate[pid]) if pid in lactate.index else alerts
        for pid, alerts in board["alerts"].items()
    ]
    board["n_alerts"] = [len(a) for a in board["alerts"]]
    # trial participants: study day at `at` and the endpoint as known then (its window closes
    # at anchor + last_day·24 h; core.ward.ward_snapshot over the completed study days)
    pts = census_patients(ctx, ids).set_index("patient_id").reindex(ids)
    day_at = study_day(pd.Series(at, index=pts.index), pts["anchor_time"], rules=ctx.sofa_rules)
    closes = pts["anchor_time"] + pd.Timedelta(hours=24 * ctx.endpoint_rules.last_day)
    # the endpoint needs the totals, the components and the imputation flags only
    daily = load_daily_sofa(
        engine(),
        rules_key=ctx.sofa_rules.key(),
        patient_ids=ids,
        columns=(
            SOFA_TOTAL,
            *(SOFA_COLUMNS[o] for o in ORGANS),
            *(f"{o.value}_imputed" for o in ORGANS),
        ),
    )
    # only the study days completed by `at` (a stored day holds its whole 24 h: the rest of
    # the current day is the future at `at`)
    daily = daily[daily["study_day"] < daily["patient_id"].map(day_at).astype(float)]
    carry = pd.DataFrame(
        {
            "patient_id": ids,
            "death_study_day": np.nan,  # alive at `at` (the census rule)
            "endpoint_window_closed": (closes <= at).to_numpy(),
        }
    )
    trial = ward_snapshot(daily, carry, rules=ctx.endpoint_rules).set_index("patient_id")
    out = census.set_index("patient_id")[["site_id", "unit", "bed", "icu_admission_time"]]
    out = out.join(board).join(trial[["endpoint_status", "endpoint_decrease"]])
    for col in ("phenotype", "phenotype_reason", "near_threshold"):
        out[col] = pts[col]
    out["endpoint_status"] = out["endpoint_status"].fillna(EndpointStatus.NOT_EVALUABLE.value)
    # on study day 1 no day is complete yet: the endpoint is awaited, not unevaluable
    first_day = (day_at == 1).reindex(out.index).fillna(False).to_numpy(dtype=bool)
    out.loc[first_day, "endpoint_status"] = EndpointStatus.AWAITING.value
    out["study_day"] = day_at.where(day_at >= 1)
    return _without_trial_endpoint(out.reset_index()[list(AT_COLUMNS)], pts.reset_index())


def census_patients(ctx: Context, patient_ids: list[str]) -> pd.DataFrame:
    """The patients of a census with their baseline phenotype: the same rows as
    :func:`components.data.cohort.cohort_patients` (``core.repository.load_patients`` and
    ``core.phenotype.classify_frame`` under the context's rules), read for these patients only.

    After an import the data version changes and the whole-cohort table is rebuilt on its next
    use; the board at a clock time does not wait for it (docs/ward.md, performance)."""
    pts = load_patients(engine(), patient_ids=patient_ids, rules=ctx.sofa_rules)
    classes = classify_frame(pts, thresholds=ctx.thresholds)
    return pd.concat([pts, classes], axis=1)


def departures_at(ctx: Context, at: pd.Timestamp, site_id: str | None = None) -> pd.DataFrame:
    """The patients who left the ICU (discharge or death) in the 24 h before ``at``, in the
    context's sites (:func:`core.repository.icu_departures`)."""
    if site_id is not None and ctx.sites is not None and site_id not in ctx.sites:
        return pd.DataFrame(columns=list(DEPARTURE_COLUMNS))
    return _departures_at(ctx.shared(), pd.Timestamp(at).floor("s"), site_id, ctx.sites).copy()


@cache.memoize()
def _departures_at(
    ctx: Context, at: pd.Timestamp, site_id: str | None, sites: tuple[str, ...] | None
) -> pd.DataFrame:
    gone = icu_departures(engine(), at, site_id=site_id)
    if sites is not None:
        gone = gone[gone["site_id"].isin(sites)]
    return gone.reset_index(drop=True)


def clock_now(ctx: Context, *, real_now: pd.Timestamp | None = None) -> pd.Timestamp:
    """What "now" is for the ward (``IMMUNOSEP_CLOCK``): the real UTC time, a fixed time, or
    the demo's replay of the synthetic trial onto the present (:func:`core.time.replay_time`
    over the period the trial's patients were in the ICU)."""
    real = pd.Timestamp.now(tz="UTC").tz_localize(None) if real_now is None else real_now
    clock = settings().clock
    if clock == "now":
        return real
    if clock != "replay":
        fixed = pd.Timestamp(clock)
        return fixed.tz_convert("UTC").tz_localize(None) if fixed.tz is not None else fixed
    start, stop = _replay_span(ctx.shared())
    return replay_time(real, start, stop)


@cache.memoize()
def _replay_span(ctx: Context) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The period the replay cycles through (:func:`core.time.replay_span` of the stays)."""
    stays = load_icu_stays(engine())
    if stays.empty:
        anchors = cohort_patients(ctx)["anchor_time"]
        return anchors.min(), anchors.max() + pd.Timedelta(days=1)
    return replay_span(stays["start"], stays["stop"])
