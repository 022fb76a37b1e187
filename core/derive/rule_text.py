"""Rule texts generated from core.sofa's named cut-offs and the SofaRules settings.

Nothing here re-types a number: the cut-offs are read from :mod:`core.sofa` **at call time**
(so a changed constant changes every text) and the durations / windows from
:class:`core.rules.SofaRules`. Used by the provenance ("why this score") and available to the
UI for legends and tooltips (:func:`organ_rule_texts`, :func:`vasopressor_duration_text`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core import sofa as _sofa
from core.concepts import SCORED_DRUGS, concept
from core.rules import SofaRules
from core.vocab import RESPIRATORY_SUPPORT_KINDS, Organ


def fmt_number(x: float) -> str:
    """A number as shown in rule texts: rounded to 2 decimals, no trailing zeros."""
    return f"{round(float(x), 2):g}"


_fmt = fmt_number


def fmt_numbers(values: np.ndarray) -> np.ndarray:
    """:func:`fmt_number` of every value, as an object array of str (vectorised text
    building: the provenance has one text per patient-day and organ, docs/architecture.md).

    Each distinct value (told apart by its bits, so ``-0.0`` keeps its ``"-0"``) is
    formatted once. A value that is exactly a number of hundredths below 10,000 in size (as
    rounded values are) is printed with numpy string kernels: sign, integer part and the
    hundredths without trailing zeros, which is what ``f"{x:g}"`` prints for at most 6
    significant digits; any other value (NaN, inf, 10,000 or more, more decimals) goes
    through :func:`fmt_number` itself.
    """
    floats = np.ascontiguousarray(values, dtype=np.float64)
    codes, bits = pd.factorize(floats.view(np.int64))
    uniq = bits.view(np.float64)
    texts = np.empty(uniq.size, dtype=object)
    with np.errstate(invalid="ignore"):
        cents = np.rint(uniq * 100)
        fast = np.isfinite(uniq) & (np.abs(uniq) < 10_000) & (cents / 100 == uniq)
    if fast.any():
        text = np.dtypes.StringDType()
        hundredths = np.array(
            ["", *("." + f"{k:02d}".rstrip("0") for k in range(1, 100))], dtype=text
        )
        magnitude = np.abs(cents[fast]).astype(np.int64)
        sign = np.where(np.signbit(uniq[fast]), "-", "").astype(text)
        whole = np.strings.add(sign, (magnitude // 100).astype(text))
        texts[fast] = np.strings.add(whole, hundredths[magnitude % 100]).astype(object)
    slow = np.flatnonzero(~fast)
    if slow.size:
        texts[slow] = [fmt_number(x) for x in uniq[slow].tolist()]
    return texts[codes]


def str_texts(values: np.ndarray) -> np.ndarray:
    """``str(value)`` of every value (as an f-string prints it), once per distinct value;
    missing values (None, NaN) keep their own ``"None"`` / ``"nan"``."""
    values = np.asarray(values)
    codes, uniq = pd.factorize(values)
    texts = np.empty(len(uniq) + 1, dtype=object)
    texts[:-1] = [str(u) for u in uniq.tolist()]
    out = texts[codes]  # code -1 (missing) takes the spare last slot, replaced below
    missing = np.flatnonzero(codes < 0)
    if missing.size:
        out[missing] = [str(v) for v in values[missing].tolist()]
    return out


def below_phrases(breaks: tuple[float, ...]) -> tuple[str, ...]:
    """Phrase per score 0..4 for "x < break" organs (score 0 = at or above the first break)."""
    return (f">= {_fmt(breaks[0])}", *(f"< {_fmt(b)}" for b in breaks))


def at_or_above_phrases(breaks: tuple[float, ...]) -> tuple[str, ...]:
    """Phrase per score 0..4 for "x >= break" organs (score 0 = below the first break)."""
    return (f"< {_fmt(breaks[0])}", *(f">= {_fmt(b)}" for b in breaks))


def gcs_phrases() -> tuple[str, ...]:
    """GCS phrase per score 0..4, e.g. ``15``, ``13-14``, ..., ``< 6`` (integer scale)."""
    b = _sofa.GCS_BREAKS
    bands = (f"{_fmt(b[k])}-{_fmt(b[k - 1] - 1)}" for k in range(1, len(b)))
    return (_fmt(b[0]), *bands, f"< {_fmt(b[-1])}")


def pf_phrases() -> tuple[str, ...]:
    """P/F phrase per score 0..4; scores 3-4 need respiratory support."""
    p = below_phrases(_sofa.PAO2_FIO2_MMHG_BREAKS)
    return (*p[:3], *(f"{x} with support" for x in p[3:]))


def pf_capped_phrase() -> str:
    """P/F phrase when the score is capped at 2 without respiratory support."""
    return f"< {_fmt(_sofa.PAO2_FIO2_MMHG_BREAKS[2])} without respiratory support (capped at 2)"


def urine_phrases() -> dict[int, str]:
    """Urine-output phrase per urine score (0, 3, 4)."""
    u3, u4 = _sofa.URINE_ML_24H_SCORE3_BELOW, _sofa.URINE_ML_24H_SCORE4_BELOW
    return {0: f">= {_fmt(u3)}", 3: f"< {_fmt(u3)}", 4: f"< {_fmt(u4)}"}


def vasopressor_duration_text(rules: SofaRules = SofaRules()) -> str:
    """The infusion-duration rule in words, e.g. ``">= 60 min rule"``.

    From ``rules.vasopressor_min_minutes`` and ``rules.require_vasopressor_60min``; for UI
    labels and the provenance texts (SRC-VINCENT "at least 1 h", SRC-RICU ``vaso60``).
    """
    if not rules.require_vasopressor_60min:
        return "no minimum duration"
    return f">= {_fmt(rules.vasopressor_min_minutes)} min rule"


def drug_phrase(drug: str) -> str:
    """Tiers of one drug, e.g. ``dopamine > 0 -> 2, > 5 -> 3, > 15 -> 4``."""
    tiers = _sofa.drug_tiers(drug)
    return f"{drug} " + ", ".join(f"> {_fmt(x)} -> {pts}" for x, pts in tiers)


def organ_rule_texts(rules: SofaRules = SofaRules()) -> dict[Organ, str]:
    """One sentence per organ describing how it is scored under ``rules``.

    Generated from core.sofa's named cut-offs and the SofaRules settings (FiO2 window,
    support definition, vasopressor minutes and merge gap, sedated-GCS rule, urine hours),
    so a legend or tooltip never re-types a number (clinical.md 2.8).

    Returns
    -------
    dict
        :class:`core.vocab.Organ` -> text.
    """
    pf = pf_phrases()
    support = ", ".join(
        k.replace("_", " ") for k in RESPIRATORY_SUPPORT_KINDS[rules.respiratory_support]
    )
    plt = below_phrases(_sofa.PLATELETS_10E3_PER_UL_BREAKS)
    bili = at_or_above_phrases(_sofa.BILIRUBIN_MG_DL_BREAKS)
    creat = at_or_above_phrases(_sofa.CREATININE_MG_DL_BREAKS)
    gcs = gcs_phrases()
    urine = urine_phrases()

    def tiers(phrases: tuple[str, ...]) -> str:
        return ", ".join(f"{p} -> {k}" for k, p in enumerate(phrases) if k)

    if rules.require_vasopressor_60min:
        duration = (
            f"counted when infused for >= {_fmt(rules.vasopressor_min_minutes)} min "
            f"(segments less than {_fmt(rules.vasopressor_merge_gap_minutes)} min apart merged)"
        )
    else:
        duration = "counted at any duration"
    sedated = (
        "under sedation the last GCS before sedation (15 if none)"
        if rules.gcs_sedated == "pre_sedation_or_15"
        else "GCS as charted, also under sedation"
    )
    return {
        Organ.RESPIRATION: (
            f"PaO2/FiO2 (mmHg; FiO2 charted up to {_fmt(rules.fio2_match_window_hours)} h "
            f"before the PaO2): {tiers(pf)}; support = {support}"
        ),
        Organ.COAGULATION: f"platelets ({concept('platelets').unit}): {tiers(plt)}",
        Organ.LIVER: f"bilirubin ({concept('bilirubin').unit}): {tiers(bili)}",
        Organ.CARDIOVASCULAR: (
            f"MAP < {_fmt(_sofa.MAP_MMHG_SCORE1_BELOW)} mmHg -> 1; "
            + "; ".join(drug_phrase(d) for d in SCORED_DRUGS)
            + f" (mcg/kg/min), {duration}"
        ),
        Organ.CNS: f"GCS {tiers(gcs)}; {sedated}",
        Organ.RENAL: (
            f"creatinine ({concept('creatinine').unit}): {tiers(creat)}; urine output "
            f"{urine[3]} mL/24 h -> 3, {urine[4]} -> 4 (scaled to 24 h when at least "
            f"{_fmt(rules.urine_min_observed_hours)} h observed)"
        ),
    }
