"""The ward board's rows: one site's patients as of a study day (core.ward.ward_snapshot)."""

from __future__ import annotations

import pandas as pd

from components.data.cohort import cohort_patients, visible_patients
from components.data.keys import Context
from components.server.cache import cache
from components.server.context import engine
from core.repository import load_daily_sofa
from core.ward import ward_snapshot

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
    return ward_snapshot(daily, carry, as_of_day=as_of_day, rules=ctx.endpoint_rules)


def ward_board(ctx: Context, site_id: str, as_of_day: int | None) -> pd.DataFrame:
    """Ward rows for one site as of a study day; empty when the site is not the context's."""
    if ctx.sites is not None and site_id not in ctx.sites:
        return pd.DataFrame()
    return _ward(ctx.shared(), site_id, as_of_day).copy()
