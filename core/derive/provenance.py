"""Provenance: the deciding raw value and a "why this score" text per patient-day and organ.

Texts are built column-wise: each template runs once per distinct combination of its inputs
(:func:`render`) and the phrases come from :mod:`core.derive.rule_text` (core.sofa's cut-offs
and the SofaRules settings), e.g. ``"creatinine 327.08 umol/L = 3.7 mg/dL >= 3.5 -> 3"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import pandas as pd

from core import sofa as _sofa
from core.concepts import SCORED_DRUGS, concept
from core.derive.primitives import GCS_NORMAL, take_col
from core.derive.rule_text import (
    at_or_above_phrases,
    below_phrases,
    gcs_phrases,
    pf_capped_phrase,
    pf_phrases,
    urine_phrases,
    vasopressor_duration_text,
)
from core.derive.rule_text import fmt_number as _fmt
from core.rules import SofaRules
from core.time import as_ns
from core.vocab import SOFA_COLUMNS, Organ

#: the columns of the provenance table, in order (also those of an empty one)
PROVENANCE_COLUMNS: Final = (
    "patient_id",
    "study_day",
    "organ",
    "score",
    "variable",
    "value",
    "unit",
    "time",
    "source",
    "rule",
    "imputed",
    "imputation",
)


def render(
    template: Callable[..., str], cols: dict[str, np.ndarray], mask: np.ndarray
) -> np.ndarray:
    """``template(*row)`` for masked rows, evaluated once per distinct combination of ``cols``.

    Vectorised string building: rows are factorised (:func:`_combination_codes`) and the
    Python template runs only on the distinct combinations (their values as Python scalars,
    as ``itertuples`` gives them), then is broadcast back.
    """
    out = np.full(mask.size, None, dtype=object)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    # floats are shown with 2 decimals: group on the rounded value so equal texts share a call
    values = [np.round(v[idx], 2) if v.dtype.kind == "f" else v[idx] for v in cols.values()]
    codes = _combination_codes(values)
    first = np.empty(int(codes.max()) + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size)[::-1]
    rows = zip(*(v[first].tolist() for v in values), strict=True)
    texts = np.empty(first.size, dtype=object)
    texts[:] = [template(*row) for row in rows]
    out[idx] = texts[codes]
    return out


def _combination_codes(columns: list[np.ndarray]) -> np.ndarray:
    """Code of each row's combination of values, numbered in order of first appearance
    (as ``DataFrame(columns).groupby(..., sort=False, dropna=False).ngroup()``): each column
    factorised, the codes packed into one int64 key, the key factorised; the groupby itself
    when the key would not fit."""
    key = np.zeros(columns[0].size, dtype=np.int64)
    span = 1
    for col in columns:
        code, uniq = pd.factorize(col, use_na_sentinel=False)
        span *= max(len(uniq), 1)
        if span >= 2**62:
            frame = pd.DataFrame(dict(enumerate(columns)))
            return frame.groupby(list(frame), sort=False, dropna=False).ngroup().to_numpy()
        key = key * max(len(uniq), 1) + code
    return pd.factorize(key)[0]


def memo_fmt() -> Callable[[float], str]:
    """:func:`core.derive.rule_text.fmt_number` with a cache of its own (one per provenance
    table: rendered values are rounded to 2 decimals, so most numbers repeat)."""
    cache: dict[float, str] = {}

    def fmt(x: float) -> str:
        text = cache.get(x)
        if text is None:
            text = _fmt(x)
            if x != 0:  # 0.0 == -0.0 as keys, yet "0" != "-0"
                cache[x] = text
        return text

    return fmt


def _threshold_template(
    label: str, canon_unit: str, phrases: tuple[str, ...], fmt: Callable[[float], str] = _fmt
) -> Callable[..., str]:
    """Template for single-threshold organs (platelets, bilirubin, creatinine)."""

    def template(val: float, unit: str, canon: float, score: int, si: bool) -> str:
        txt = f"{label} {fmt(val)} {unit}"
        if unit != canon_unit:
            txt += f" = {fmt(canon)} {canon_unit}"
        phrase = "on the printed SI bands" if si else phrases[score]
        return f"{txt} {phrase} -> {score}"

    return template


def _cns_template_for(fmt: Callable[[float], str] = _fmt) -> Callable[..., str]:
    """Template of the CNS text (sedation: the substituted pre-sedation GCS)."""
    phrases = gcs_phrases()
    normal = fmt(GCS_NORMAL)

    def template(sedated: bool, charted: float, pre: float, score: int) -> str:
        phrase = phrases[score]
        if not sedated:
            return f"GCS {fmt(charted)} {phrase} -> {score}"
        if np.isnan(pre):
            return (
                f"sedated: no GCS before sedation -> {normal} "
                f"(charted during sedation: {fmt(charted)}) -> {score}"
            )
        return (
            f"sedated: pre-sedation GCS {fmt(pre)} (charted during sedation: {fmt(charted)}) "
            f"{phrase} -> {score}"
        )

    return template


def _resp_template_for(fmt: Callable[[float], str] = _fmt) -> Callable[..., str]:
    """Template of the respiration text (PaO2, FiO2, P/F, support cap)."""
    phrases = pf_phrases()
    capped_phrase = pf_capped_phrase()

    def template(
        pao2: float,
        pao2_unit: str,
        pao2_mmhg: float,
        fio2: float,
        fio2_unit: str,
        pf: float,
        capped: bool,
        score: int,
    ) -> str:
        phrase = capped_phrase if capped else phrases[score]
        conv = f" = {fmt(pao2_mmhg)} mmHg" if pao2_unit != "mmHg" else ""
        return (
            f"PaO2 {fmt(pao2)} {pao2_unit}{conv} / FiO2 {fmt(fio2)} {fio2_unit} "
            f"= P/F {fmt(pf)} mmHg {phrase} -> {score}"
        )

    return template


def _urine_template_for(fmt: Callable[[float], str] = _fmt) -> Callable[..., str]:
    """Template of the urine-output text (sum, hours, scaled to 24 h)."""
    phrases = urine_phrases()

    def template(total: float, hours: float, per_24h: float, u_score: int, score: int) -> str:
        scaled = f"-> {fmt(per_24h)} mL/24h " if total != per_24h else ""
        return f"urine {fmt(total)} mL over {fmt(hours)} h {scaled}{phrases[u_score]} -> {score}"

    return template


def _cv_template_for(rules: SofaRules, fmt: Callable[[float], str] = _fmt) -> Callable[..., str]:
    """Template of the cardiovascular text (deciding drug and run, or MAP)."""
    duration = vasopressor_duration_text(rules)
    map_cut = fmt(_sofa.MAP_MMHG_SCORE1_BELOW)

    def template(
        decider: int,
        rate: float,
        received: float,
        unit: str,
        minutes: float,
        mapv: float,
        low_map: bool,
        score: int,
    ) -> str:
        if decider < len(SCORED_DRUGS):
            return (
                f"{SCORED_DRUGS[decider]} {fmt(rate)} mcg/kg/min "
                f"(received {fmt(received)} {unit}) for {fmt(minutes)} min ({duration}) "
                f"-> {score}"
            )
        if decider == len(SCORED_DRUGS):
            op = f"< {map_cut}" if low_map else f">= {map_cut}, no qualifying vasopressor"
            return f"MAP {fmt(mapv)} mmHg {op} -> {score}"
        return f"no qualifying vasopressor and MAP missing -> {score}"

    return template


def _imputed_template(kind: str, src_day: float) -> str:
    """Rule text of an imputed component (names the policy and the source day)."""
    if kind == "locf":
        return f"missing -> carried forward from study day {int(src_day)} (locf)"
    if kind == "day1_zero":
        return "missing on study day 1 -> 0 (day1_zero)"
    return f"missing -> 0 ({kind})"


def build_provenance(
    *,
    obs: pd.DataFrame,
    inf: pd.DataFrame,
    daily: pd.DataFrame,
    raw_components: dict[Organ, pd.Series],
    placed: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    extras: dict[str, np.ndarray],
    si: bool,
    rules: SofaRules,
) -> pd.DataFrame:
    """Long provenance table (one row per patient-day and organ), built column-wise.

    Parameters
    ----------
    obs, inf
        The normalised observations / infusions the grid was derived from.
    daily
        The filled daily frame (:func:`core.derive.impute.fill_trajectory` output, grid order).
    raw_components
        Organ -> component score before filling (``<NA>`` = not observed).
    placed
        Variable -> (grid value, source row or -1, present) from the grid step.
    extras
        Per-grid-row details: ``pf_support``, ``fio2_row``, ``gcs_sedated``, ``gcs_src_row``,
        ``urine_sum``, ``urine_hours``.
    si
        ``rules.si_units_cutoffs == "use_printed_si_bands"``.
    rules
        The SofaRules the grid was derived under (texts name its durations).

    Returns
    -------
    DataFrame
        ``patient_id, study_day, organ, score, variable, value, unit, time, source, rule,
        imputed, imputation`` (see :class:`core.derive.grid.DailySofa`).
    """
    n = len(daily)
    nat = np.iinfo(np.int64).min
    fmt = memo_fmt()
    o_val = obs["value_as_received"].to_numpy(dtype=np.float64)
    o_time = as_ns(obs["time"])
    o_canon = obs["value"].to_numpy(dtype=np.float64)
    if len(inf):
        i_val = inf["rate_as_received"].to_numpy(dtype=np.float64)
        i_unit = inf["unit_as_received"].astype(object).to_numpy()
        i_start = as_ns(inf["start"])
        i_src = inf["source"].astype(object).to_numpy() if "source" in inf else None
    else:
        i_val, i_unit, i_start, i_src = np.zeros(1), np.array([None]), np.full(1, nat), None

    def take(arr: np.ndarray, rows: np.ndarray, fill: object) -> np.ndarray:
        if arr.size == 0:
            return np.full(rows.size, fill)
        return np.where(rows >= 0, arr[np.maximum(rows, 0)], fill)

    def comp(organ: Organ) -> np.ndarray:
        return raw_components[organ].to_numpy(dtype=np.int64, na_value=-1)

    def o_unit_at(rows: np.ndarray, fill: object = "") -> np.ndarray:
        return take_col(obs["unit_as_received"], rows, fill)

    def unit_is_si(rows: np.ndarray) -> np.ndarray:
        if not si:
            return np.zeros(rows.size, dtype=bool)
        u = pd.Series(o_unit_at(rows)).astype(str).str.casefold()
        return u.str.contains("mol").to_numpy()

    cols: dict[Organ, dict[str, np.ndarray]] = {}

    def from_obs(organ: Organ, rows: np.ndarray, rule: np.ndarray) -> None:
        cols[organ] = {
            "variable": take_col(obs["variable"], rows, None),
            "value": take(o_val, rows, np.nan),
            "unit": o_unit_at(rows, None),
            "time": take(o_time, rows, nat),
            "source": take_col(obs["source"], rows, None) if "source" in obs else np.full(n, None),
            "rule": rule,
        }

    # single-variable organs
    for organ, name, phrases in (
        (
            Organ.COAGULATION,
            "platelets",
            below_phrases(_sofa.PLATELETS_10E3_PER_UL_BREAKS),
        ),
        (
            Organ.LIVER,
            "bilirubin",
            at_or_above_phrases(_sofa.BILIRUBIN_MG_DL_BREAKS),
        ),
    ):
        label, canon_unit = name, concept(name).unit
        vals, rows, _ = placed[name]
        score = comp(organ)
        rule = render(
            _threshold_template(label, canon_unit, phrases, fmt),
            {
                "v": take(o_val, rows, np.nan),
                "u": o_unit_at(rows),
                "c": vals,
                "s": score,
                "si": unit_is_si(rows) & (organ is Organ.LIVER),
            },
            (rows >= 0) & (score >= 0),
        )
        from_obs(organ, rows, rule)

    # CNS (sedation: the substituted pre-sedation GCS is the deciding value)
    rows = placed["gcs"][1]
    score = comp(Organ.CNS)
    sed, src = extras["gcs_sedated"], extras["gcs_src_row"]
    pre = np.where(sed & (src >= 0), take(o_val, src, np.nan), np.nan)
    rule = render(
        _cns_template_for(fmt),
        {"sed": sed, "c": take(o_val, rows, np.nan), "p": pre, "s": score},
        (rows >= 0) & (score >= 0),
    )
    from_obs(Organ.CNS, np.where(sed & (src >= 0), src, rows), rule)

    # respiration
    pf, rows, _ = placed["pf"]
    score = comp(Organ.RESPIRATION)
    frow = extras["fio2_row"]
    rule = render(
        _resp_template_for(fmt),
        {
            "pa": take(o_val, rows, np.nan),
            "pu": o_unit_at(rows),
            "pm": take(o_canon, rows, np.nan),
            "fi": take(o_val, frow, np.nan),
            "fu": o_unit_at(frow),
            "pf": pf,
            "cap": (score == 2)
            & (pf < _sofa.PAO2_FIO2_MMHG_BREAKS[2])
            & ~extras["pf_support"].astype(bool),
            "s": score,
        },
        (rows >= 0) & (frow >= 0) & (score >= 0),
    )
    from_obs(Organ.RESPIRATION, rows, rule)

    # renal: creatinine or urine, whichever scores worse (creatinine on ties)
    creat, c_rows, _ = placed["creatinine"]
    urine = placed["urine"][0]
    u_rows = np.where(np.isnan(urine), -1, placed["urine"][1])
    score = comp(Organ.RENAL)
    c_score = np.where(c_rows >= 0, _sofa.score_creatinine(creat), -1)
    u_score = np.where(np.isnan(urine), -1, _sofa.score_urine_output(urine))
    use_urine = (u_rows >= 0) & (u_score > c_score)
    renal_rows = np.where(use_urine, u_rows, c_rows)
    c_rule = render(
        _threshold_template(
            "creatinine",
            concept("creatinine").unit,
            at_or_above_phrases(_sofa.CREATININE_MG_DL_BREAKS),
            fmt,
        ),
        {
            "v": take(o_val, c_rows, np.nan),
            "u": o_unit_at(c_rows),
            "c": creat,
            "s": score,
            "si": unit_is_si(c_rows),
        },
        ~use_urine & (c_rows >= 0) & (score >= 0),
    )
    u_rule = render(
        _urine_template_for(fmt),
        {
            "t": extras["urine_sum"],
            "h": extras["urine_hours"],
            "x": urine,
            "us": u_score,
            "s": score,
        },
        use_urine & (score >= 0),
    )
    from_obs(Organ.RENAL, renal_rows, np.where(use_urine, u_rule, c_rule))

    # cardiovascular: the drug (or MAP) that decides
    score = comp(Organ.CARDIOVASCULAR)
    map_vals, map_rows, _ = placed["map"]
    decider = np.full(n, len(SCORED_DRUGS) + 1, dtype=np.int64)
    inf_rows = np.full(n, -1, dtype=np.int64)
    rate = np.full(n, np.nan)
    minutes = np.full(n, np.nan)
    for d_i in range(len(SCORED_DRUGS) - 1, -1, -1):  # first drug in SCORED_DRUGS wins ties
        drug = SCORED_DRUGS[d_i]
        v = placed[drug][0]
        sub = _sofa.drug_points(drug, v)
        hit = (sub == score) & (score >= 2)
        decider[hit] = d_i
        inf_rows[hit] = placed[drug][1][hit]
        rate[hit] = v[hit]
        minutes[hit] = placed[drug + "_minutes"][0][hit]
    by_map = (decider > len(SCORED_DRUGS)) & (map_rows >= 0)
    decider[by_map] = len(SCORED_DRUGS)
    is_inf = decider < len(SCORED_DRUGS)
    # a drug's text does not name the MAP: not a distinct text per MAP value
    shown_map = np.where(is_inf, np.nan, map_vals)
    rule = render(
        _cv_template_for(rules, fmt),
        {
            "d": decider,
            "r": rate,
            "rv": take(i_val, inf_rows, np.nan),
            "u": take(i_unit, inf_rows, ""),
            "m": minutes,
            "map": shown_map,
            "low": shown_map < _sofa.MAP_MMHG_SCORE1_BELOW,
            "s": score,
        },
        score >= 0,
    )
    from_obs(Organ.CARDIOVASCULAR, np.where(by_map, map_rows, -1), rule)
    cv = cols[Organ.CARDIOVASCULAR]
    drug_names = np.array([*SCORED_DRUGS, None, None], dtype=object)
    cv["variable"] = np.where(is_inf, drug_names[decider], cv["variable"])
    cv["value"] = np.where(is_inf, take(i_val, inf_rows, np.nan), cv["value"])
    cv["unit"] = np.where(is_inf, take(i_unit, inf_rows, None), cv["unit"])
    cv["time"] = np.where(is_inf, take(i_start, inf_rows, nat), cv["time"])
    inf_source = take(i_src, inf_rows, None) if i_src is not None else np.full(n, "infusions")
    cv["source"] = np.where(is_inf, inf_source, cv["source"])

    # imputed values: rule names the policy (and the day carried forward from)
    pid = daily["patient_id"].to_numpy()
    sday = daily["study_day"].to_numpy()
    pcode = pd.factorize(pid)[0]  # grouped on integer codes (ids hashed once, not per organ)
    kinds, imputed_flags, scores = {}, {}, {}
    for organ in Organ:
        kind = daily[f"{organ.value}_imputation"].to_numpy()
        imputed = daily[f"{organ.value}_imputed"].to_numpy(dtype=bool)
        seen = raw_components[organ].notna().to_numpy() | (sday == 1)
        src_day = (
            pd.Series(np.where(seen, sday, np.nan)).groupby(pcode, sort=False).ffill().to_numpy()
        )
        imp_rule = render(_imputed_template, {"k": kind, "d": src_day}, imputed)
        cols[organ]["rule"] = np.where(imputed, imp_rule, cols[organ]["rule"])
        kinds[organ], imputed_flags[organ] = kind, imputed
        scores[organ] = daily[SOFA_COLUMNS[organ]].to_numpy(dtype=np.float64, na_value=np.nan)

    organs = list(Organ)

    def interleave(get: Callable[[Organ], np.ndarray]) -> np.ndarray:
        return np.stack([get(o) for o in organs], axis=1).reshape(-1)

    score_all = interleave(lambda o: scores[o])
    return pd.DataFrame(
        {
            "patient_id": np.repeat(pid, len(organs)),
            "study_day": np.repeat(sday, len(organs)),
            "organ": np.tile(np.array([o.value for o in organs], dtype=object), n),
            "score": pd.arrays.IntegerArray(
                np.nan_to_num(score_all, nan=0.0).astype(np.int8), np.isnan(score_all)
            ),
            "variable": interleave(lambda o: cols[o]["variable"]),
            "value": interleave(lambda o: cols[o]["value"].astype(np.float64)),
            "unit": interleave(lambda o: cols[o]["unit"]),
            "time": interleave(lambda o: cols[o]["time"].astype(np.int64)).view("datetime64[ns]"),
            "source": interleave(lambda o: cols[o]["source"]),
            "rule": interleave(lambda o: cols[o]["rule"]),
            "imputed": interleave(lambda o: imputed_flags[o]),
            "imputation": interleave(lambda o: kinds[o]),
        },
        copy=False,  # new arrays: no copy, no consolidation into 2-D blocks
    )
