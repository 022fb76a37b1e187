"""The printed JAMA values and the reproduction check: the published counts go through the
same statistics (:mod:`core.stats`) and the same formatter as the primary panel."""

from __future__ import annotations

import pandas as pd

from components.format import comparison_texts
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
