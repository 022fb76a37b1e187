"""The printed JAMA values and two checks (docs/clinical.md §1.7, §1.8.3):

* :func:`publication_check`: the *published counts* go through the same statistics
  (:mod:`core.stats`) and formatter as the primary panel (the statistics code reproduces the
  printed RD / OR / P; no patient data involved);
* :func:`dataset_check`: *this dataset's own* results, taken from the Primary, Survival and
  Immune tabs' ``compute`` for the current filters and access, against the published table
  (:func:`compare_with_published`, pure): which rows match and why the others differ. On the
  full synthetic demo every row matches; a filter makes rows differ.

Both print arm-level counts: shown only to unblinded roles on the synthetic demo. The one
place that decides is :func:`publication_for` (it asks
:func:`components.blinding.may_see_publication_check`): the page's badge, its filter callback and
every report format (HTML, DOCX, PDF) take what it returns, ``None`` for every other role.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from components.blinding import may_see_publication_check
from components.cohort import immune, primary, survival
from components.data.cohort import CohortFilters
from components.data.keys import Context
from components.format import comparison_texts, fmt_p, fmt_ratio, fmt_rd
from components.server.context import dataset_info
from core.stats import compare_proportions

#: published values (clinical.md §1.8.3 / §1.7 reproduction), as printed; RD as precision −
#: placebo (the 28-day row is printed with the reverse sign, clinical.md §1.9 #2)
PUBLISHED = (
    {
        "outcome": "Primary (day 9)",
        "counts": (46, 131, 26, 145),
        "rd": "17.2 (6.8 to 27.2)",
        "or": "2.48 (1.42–4.32)",
        "p": ".002",
    },
    {
        "outcome": "Day-15 SOFA response",
        "counts": (52, 131, 34, 145),
        "rd": "16.3 (5.3 to 26.8)",
        "or": "2.15 (1.28–3.61)",
        "p": ".004",
        # 39.7 % − 23.4 % of the rounded percentages; 52/131 − 34/145 = 16.2 (clinical.md §1.7)
        "not_compared": {"rd": "printed as the difference of rounded percentages"},
    },
    {
        "outcome": "28-day mortality",
        "counts": (57, 131, 72, 145),
        "rd": "−6.1 (−17.6 to 5.6)",
        "or": "0.78 (0.49–1.26)",
        "p": ".34",
        # Fisher P 0.3349 is printed .34 (rounded twice: 0.335 → .34; clinical.md §1.7)
        "not_compared": {"p": "printed after rounding twice (0.3349 → 0.335 → .34)"},
    },
    {
        "outcome": "Immune reversal (SIDF)",
        "counts": (46, 59, 32, 66),
        "rd": "29.5 (12.6 to 44.0)",
        "or": "3.76 (1.72–8.22)",
        "p": ".001",
    },
)


def publication_check() -> pd.DataFrame:
    """Published counts through the panel's own code path vs the printed JAMA values.

    Uses :func:`core.stats.compare_proportions` and the same text formatter as the primary
    panel (:func:`components.format.comparison_texts`). No patient data involved.
    Fields the paper itself printed inconsistently (clinical.md §1.7 / §1.9) are shown but
    listed in ``not_compared``; every other field must match to the printed precision.
    """
    rows = []
    for pub in PUBLISHED:
        got = comparison_texts(compare_proportions(*pub["counts"]))
        skip = pub.get("not_compared", {})
        ok = all(got[k] == pub[k] for k in ("rd", "or", "p") if k not in skip)
        rows.append(
            {
                "outcome": pub["outcome"],
                "counts": "{}/{} vs {}/{}".format(*pub["counts"]),
                "published_rd": pub["rd"],
                "computed_rd": got["rd"],
                "published_or": pub["or"],
                "computed_or": got["or"],
                "published_p": pub["p"],
                "computed_p": got["p"],
                "match": ok,
                "not_compared": "; ".join(f"{k}: {v}" for k, v in skip.items()),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# This dataset against the published table
# ---------------------------------------------------------------------------------------------

#: published row → the tab that shows this dataset's value (for the "why" text)
TABS = {
    "Primary (day 9)": "Primary endpoint tab, day-9 table",
    "Day-15 SOFA response": "Primary endpoint tab, day-15 table",
    "28-day mortality": "Survival tab, 28-day mortality",
    "Immune reversal (SIDF)": "Immune tab, immune reversal",
}


@dataclass(frozen=True)
class DatasetRow:
    """One published row as this dataset's own tab computes it: the per-group counts
    (treated first) and the texts of the comparison, or None when the tab has no comparison
    (a group empty after filtering)."""

    counts: tuple[int, int, int, int]
    texts: Mapping[str, str] | None


def _summary_row(summary: pd.DataFrame) -> DatasetRow | None:
    """The overall row of a :func:`core.stats.arm_summary` table (what the Primary and Immune
    tabs print), or None when the tab has no comparison."""
    if summary.empty:
        return None
    r = summary[summary["stratum"] == "overall"].iloc[0]
    counts = (
        int(r["events_treated"]),
        int(r["n_treated"]),
        int(r["events_control"]),
        int(r["n_control"]),
    )
    if math.isnan(r["risk_difference"]):
        return DatasetRow(counts, None)
    texts = {
        "rd": fmt_rd(
            r["risk_difference"], r["risk_difference_ci_lower"], r["risk_difference_ci_upper"]
        ),
        "or": fmt_ratio(r["odds_ratio"], r["odds_ratio_ci_lower"], r["odds_ratio_ci_upper"]),
        "p": fmt_p(r["p_value"]),
    }
    return DatasetRow(counts, texts)


def dataset_rows(ctx: Context, filters: CohortFilters) -> dict[str, DatasetRow | None]:
    """This dataset's value of every published row, taken from the very ``compute`` functions
    (cached) of the Primary, Survival and Immune tabs for these filters and this access, so
    the check can never disagree with what the tabs print. Only for roles that see the arms
    (the caller checks :func:`components.blinding.may_see_publication_check`); blinded
    computes have no comparison and give None rows."""
    prim = primary.compute(ctx, filters)
    mortality = survival.compute(ctx, filters)[28]["mortality"]
    return {
        "Primary (day 9)": _summary_row(prim["summary_d9"]),
        "Day-15 SOFA response": _summary_row(prim["summary_d15"]),
        "28-day mortality": None
        if mortality is None
        else DatasetRow(
            (
                mortality.events_treated,
                mortality.n_treated,
                mortality.events_control,
                mortality.n_control,
            ),
            comparison_texts(mortality),
        ),
        "Immune reversal (SIDF)": _summary_row(immune.compute(ctx, filters)["reversal"]),
    }


def _counts_text(counts: tuple[int, int, int, int] | None) -> str:
    return "–" if counts is None else "{}/{} vs {}/{}".format(*counts)


def compare_with_published(rows: Mapping[str, DatasetRow | None]) -> pd.DataFrame:
    """Pure: this dataset's rows (:func:`dataset_rows`) against :data:`PUBLISHED`.

    One row per published outcome with ``outcome``, ``published`` (counts and RD / OR / P as
    printed), ``dataset`` (the same from this dataset, "–" when the tab has no comparison),
    ``match`` (bool) and ``why`` (empty when it matches; otherwise which counts or texts
    differ). A row matches when its counts equal the published counts and every printed text
    equals this dataset's, except the fields the paper printed inconsistently
    (``not_compared``, clinical.md §1.7 / §1.9). An outcome missing from ``rows`` raises
    :class:`KeyError` naming it.
    """
    out = []
    for pub in PUBLISHED:
        name = pub["outcome"]
        if name not in rows:
            raise KeyError(
                f"compare_with_published: no dataset value for the published row {name!r} "
                f"(expected one of {[p['outcome'] for p in PUBLISHED]})"
            )
        got = rows[name]
        skip = pub.get("not_compared", {})
        published = f"{_counts_text(pub['counts'])}; RD {pub['rd']}, OR {pub['or']}, P {pub['p']}"
        reasons: list[str] = []
        if got is None:
            dataset = "–"
            reasons.append(f"no comparison on the {TABS[name]} (a group is empty)")
        else:
            dataset = _counts_text(got.counts)
            if got.texts is not None:
                dataset += f"; RD {got.texts['rd']}, OR {got.texts['or']}, P {got.texts['p']}"
            if tuple(got.counts) != tuple(pub["counts"]):
                reasons.append(
                    f"counts {_counts_text(got.counts)} ≠ published {_counts_text(pub['counts'])}"
                )
            if got.texts is None:
                reasons.append("no comparison (a group is empty)")
            else:
                reasons += [
                    f"{label} {got.texts[k]} ≠ printed {pub[k]}"
                    for k, label in (("rd", "RD"), ("or", "OR"), ("p", "P"))
                    if k not in skip and got.texts[k] != pub[k]
                ]
        out.append(
            {
                "outcome": name,
                "published": published,
                "dataset": dataset,
                "match": not reasons,
                "why": "; ".join(reasons),
                "not_compared": "; ".join(f"{k}: {v}" for k, v in skip.items()),
            }
        )
    return pd.DataFrame(out)


def dataset_check(ctx: Context, filters: CohortFilters) -> pd.DataFrame:
    """:func:`compare_with_published` on :func:`dataset_rows` for this access and filters."""
    return compare_with_published(dataset_rows(ctx, filters))


def differing(check: pd.DataFrame) -> list[str]:
    """The outcomes of a :func:`compare_with_published` table that do not match."""
    return list(check.loc[~check["match"], "outcome"])


#: the headers of the dataset-vs-published table, in every report format
ROW_HEADERS = {
    "outcome": "Published row",
    "published": "Published",
    "dataset": "This dataset",
    "match": "Result",
    "why": "Why it differs",
    "not_compared": "Not compared",
}


@dataclass(frozen=True)
class PublicationCheck:
    """Both checks for one view: ``code`` (:func:`publication_check`, the statistics code on
    the printed counts) and ``rows`` (:func:`dataset_check`, this dataset for the view's access
    and filters against the published table)."""

    code: pd.DataFrame
    rows: pd.DataFrame

    @property
    def code_ok(self) -> bool:
        return bool(self.code["match"].all())

    @property
    def differ(self) -> list[str]:
        return differing(self.rows)

    def rows_table(self) -> pd.DataFrame:
        """The dataset-vs-published rows as the reports print them (readable headers,
        "matches" / "differs")."""
        return self.rows.assign(
            match=self.rows["match"].map({True: "matches", False: "differs"})
        ).rename(columns=ROW_HEADERS)

    def verdict_parts(self) -> tuple[str, str]:
        """(the verdict, the detail): does this dataset reproduce the published table, and
        which rows differ (the HTML report prints the verdict in bold)."""
        if not self.differ:
            return "reproduces the published table", "(every row matches)"
        return (
            "differs from the published table",
            f"in {len(self.differ)} of {len(self.rows)} rows: {', '.join(self.differ)}",
        )

    def verdict(self) -> str:
        return " ".join(self.verdict_parts())


def publication_for(ctx: Context, filters: CohortFilters) -> PublicationCheck | None:
    """The publication check this access may see for these filters, or None: the single
    decision (:func:`components.blinding.may_see_publication_check` on the context's
    visibility and the loaded dataset), asked by the badge, its callback and every report.
    Nothing is computed for a role that may not see it."""
    if not may_see_publication_check(ctx.visibility, dataset_info().demo_data):
        return None
    return PublicationCheck(publication_check(), dataset_check(ctx, filters))
