"""Table 1: baseline characteristics by group (pooled if blinded) and by immune state."""

from __future__ import annotations

from typing import Any

import pandas as pd

from components.blinding import POOLED_LABEL, groups_for
from components.cohort import charts
from components.cohort.panel import Panel, PanelView, Section
from components.data.cohort import PHENOTYPE_STRATA, CohortFilters, frame
from components.data.keys import Context
from components.server.cache import cache
from core.stats import table_one
from core.vocab import Phenotype

TABLE_ONE_CONTINUOUS = (
    "age_years",
    "baseline_sofa",
    "apache_ii",
    "charlson",
    "ferritin_ng_ml",
    "hla_dr_ab_per_cell",
)
#: skewed: median [IQR] (biomarkers span orders of magnitude; scores are ordinal)
TABLE_ONE_NONNORMAL = (
    "baseline_sofa",
    "apache_ii",
    "charlson",
    "ferritin_ng_ml",
    "hla_dr_ab_per_cell",
)
TABLE_ONE_CATEGORICAL = (
    "immune_state",
    "sex",
    "mechanical_ventilation",
    "infection_type",
    "country",
)
#: counted as distinct values per group (how many sites contributed patients)
TABLE_ONE_DISTINCT = ("site_id",)
#: the trial's stratifier as Table 1 levels (docs/clinical.md §1.3): MALS, SIP, or neither
IMMUNE_STATE_LEVELS = {
    Phenotype.MALS.value: "MALS",
    Phenotype.SIP.value: "SIP",
}
NEITHER = "neither / not classifiable"


def _table_one(
    df: pd.DataFrame, col: str, labels: tuple[str, ...], *, categorical=TABLE_ONE_CATEGORICAL
) -> pd.DataFrame:
    kw = {
        "continuous": TABLE_ONE_CONTINUOUS,
        "categorical": categorical,
        "nonnormal": TABLE_ONE_NONNORMAL,
        "distinct": TABLE_ONE_DISTINCT,
    }
    # only the groups with patients (core's SMD needs two non-empty groups)
    present = [lab for lab in labels if (df[col] == lab).any()]
    if not present:
        return table_one(df.iloc[0:0], group_col=col, groups=[], **kw)
    return table_one(df[df[col].isin(present)], group_col=col, groups=present, **kw)


@cache.memoize()
def compute(ctx: Context, filters: CohortFilters) -> dict[str, Any]:
    """Table 1 (:func:`core.stats.table_one`) by group (pooled if blinded) and by phenotype.

    Keys ``by_group`` / ``by_phenotype`` (tidy Table 1) and ``n_by_group`` /
    ``n_by_phenotype`` (patients per column, for the "(N = …)" headers).
    """
    g = groups_for(ctx.visibility)
    df = frame(ctx, filters)
    df = df.assign(
        mechanical_ventilation=df["mechanical_ventilation"].map({True: "yes", False: "no"}),
        sex=df["sex"].map({"F": "female", "M": "male"}),
        # never silently missing: anything not MALS / SIP is its own visible level
        immune_state=df["phenotype"].map(IMMUNE_STATE_LEVELS).fillna(NEITHER),
    )
    source = df if g.compared else df.assign(group=POOLED_LABEL)
    per_state = tuple(c for c in TABLE_ONE_CATEGORICAL if c != "immune_state")
    return {
        "by_group": _table_one(source, "group", g.labels),
        "by_phenotype": _table_one(df, "phenotype", PHENOTYPE_STRATA, categorical=per_state),
        "n_by_group": {lab: int((source["group"] == lab).sum()) for lab in g.labels},
        "n_by_phenotype": {lab: int((df["phenotype"] == lab).sum()) for lab in PHENOTYPE_STRATA},
    }


def n_headers(labels: tuple[str, ...], n: dict[str, int]) -> dict[str, str]:
    """Group headers with the column's patient count: "Placebo (N = 145)"."""
    return {f"g{i}": f"{lab} (N = {n.get(lab, 0)})" for i, lab in enumerate(labels)}


def render(res: dict[str, Any], ctx: Context) -> PanelView:
    g = groups_for(ctx.visibility)
    return PanelView(
        sections=(
            Section(
                "Table 1 by allocation group" if g.compared else "Table 1 (pooled)",
                table_name="table1_group",
                table=charts.table_one_display(res["by_group"], g.labels),
                headers=n_headers(g.labels, res["n_by_group"]),
            ),
            Section(
                "Table 1 by immune state",
                table_name="table1_phenotype",
                table=charts.table_one_display(res["by_phenotype"], PHENOTYPE_STRATA),
                headers=n_headers(PHENOTYPE_STRATA, res["n_by_phenotype"]),
            ),
        ),
        notes=(
            (
                "No baseline p-values (CONSORT): balance is shown as the absolute standardized "
                "mean difference (SMD; < 0.1 is usually read as balanced), shown only where two "
                "groups are compared. Continuous rows give the number missing when any is; "
                "immune state is the baseline classification (ferritin > 4420 ng/mL → MALS; "
                "ferritin ≤ 4420 and HLA-DR < 5000 AB/C → SIP; docs/clinical.md §1.3)."
            ),
        ),
    )


PANEL = Panel("baseline", "Baseline (Table 1)", compute, render)
