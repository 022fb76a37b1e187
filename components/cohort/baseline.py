"""Table 1: baseline characteristics by group (pooled if blinded) and by immune state."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.blinding import POOLED_LABEL, groups_for
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section, group_headers
from components.data.cohort import PHENOTYPE_STRATA, CohortFilters, frame
from components.data.keys import Context
from components.server.cache import cache
from core.stats import table_one

TABLE_ONE_CONTINUOUS = ("age_years", "baseline_sofa", "apache_ii", "charlson")
TABLE_ONE_NONNORMAL = ("baseline_sofa", "apache_ii", "charlson")
TABLE_ONE_CATEGORICAL = ("sex", "mechanical_ventilation", "infection_type")


def _table_one(df: pd.DataFrame, col: str, labels: tuple[str, ...]) -> pd.DataFrame:
    kw = {
        "continuous": TABLE_ONE_CONTINUOUS,
        "categorical": TABLE_ONE_CATEGORICAL,
        "nonnormal": TABLE_ONE_NONNORMAL,
    }
    # only the groups with patients (core's SMD needs two non-empty groups)
    present = [lab for lab in labels if (df[col] == lab).any()]
    if not present:
        return table_one(df.iloc[0:0], group_col=col, groups=[], **kw)
    return table_one(df[df[col].isin(present)], group_col=col, groups=present, **kw)


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Table 1 (:func:`core.stats.table_one`) by group (pooled if blinded) and by phenotype."""
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    df = df.assign(
        mechanical_ventilation=df["mechanical_ventilation"].map({True: "yes", False: "no"}),
        sex=df["sex"].map({"F": "female", "M": "male"}),
    )
    source = df if g.compared else df.assign(group=POOLED_LABEL)
    return {
        "by_group": _table_one(source, "group", g.labels),
        "by_phenotype": _table_one(df, "phenotype", PHENOTYPE_STRATA),
    }


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    return PanelView(
        sections=(
            Section(
                "Table 1 by allocation group" if g.compared else "Table 1 (pooled)",
                table_name="table1_group",
                table=charts.table_one_display(res["by_group"], g.labels),
                headers=group_headers(g.labels),
            ),
            Section(
                "Table 1 by immune state",
                table_name="table1_phenotype",
                table=charts.table_one_display(res["by_phenotype"], PHENOTYPE_STRATA),
                headers=group_headers(PHENOTYPE_STRATA),
            ),
        ),
        notes=(
            (
                "No baseline p-values (CONSORT): balance is shown as the absolute standardized "
                "mean difference (SMD; < 0.1 is usually read as balanced)."
            ),
        ),
    )


PANEL = Panel("baseline", "Baseline (Table 1)", compute, render)
