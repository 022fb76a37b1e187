"""The ward board's rows: one site's patients as of a study day (core.ward.ward_snapshot), with
what changed since the day before (core.ward.what_changed over the stored provenance)."""

from __future__ import annotations

import pandas as pd

from components.data.cohort import cohort_patients, visible_patients
from components.data.keys import Context
from components.server.cache import cache
from components.server.context import engine
from core.repository import load_daily_sofa, load_provenance
from core.vocab import ORGANS, SOFA_COLUMNS
from core.ward import change_texts, ward_snapshot, what_changed

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


@cache.memoize()
def _ward(ctx: Context, site_id: str, as_of_day: int | None) -> pd.DataFrame:
    patients = cohort_patients(ctx)
    patients = patients[patients["site_id"] == site_id]
    daily = load_daily_sofa(engine(), rules_key=ctx.sofa_rules.key(), site_id=site_id)
    carry = patients[list(CARRY_COLUMNS)]
    board = ward_snapshot(daily, carry, as_of_day=as_of_day, rules=ctx.endpoint_rules)
    changes = site_changes(ctx, daily, board)
    board["changes"] = change_texts(changes, pd.Index(board["patient_id"])).to_numpy()
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
    """core.ward.what_changed for the board's shown day of each patient.

    No bulk provenance reader exists in core.repository yet: the provenance is read per patient,
    for the patients whose score moved only (~7 ms a patient on SQLite: the largest demo site,
    34 patients of whom ~24 moved, ~0.2 s; a 700-patient site would take seconds, once per
    cache entry: a bulk reader by site and days belongs in core.repository).
    """
    days = moved_patients(daily, board)
    rules_key = ctx.sofa_rules.key()
    parts = []
    for pid, shown in days.items():
        prov = load_provenance(engine(), str(pid), rules_key=rules_key)
        parts.append(prov[prov["study_day"].isin([shown - 1, shown])])
    prov = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return what_changed(prov, day=days, daily=daily)


def ward_board(ctx: Context, site_id: str, as_of_day: int | None) -> pd.DataFrame:
    """Ward rows for one site as of a study day; empty when the site is not the context's."""
    if ctx.sites is not None and site_id not in ctx.sites:
        return pd.DataFrame()
    return _ward(ctx.shared(), site_id, as_of_day).copy()
