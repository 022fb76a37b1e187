"""Provenance: the deciding raw value and a "why this score" text per patient-day and organ.

Texts are built column-wise (:func:`render`): each template formats a number or label once
per distinct value and joins the pieces per row; the phrases come from
:mod:`core.derive.rule_text` (core.sofa's cut-offs and the SofaRules settings), e.g. ``"creatinine 327.08 umol/L = 3.7 mg/dL >= 3.5 -> 3"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import pandas as pd

from core import sofa as _sofa
from core.concepts import SCORED_DRUGS, concept
from core.derive.primitives import GCS_NORMAL, coded, take_codes, take_col
from core.derive.rule_text import (
    at_or_above_phrases,
    below_phrases,
    fmt_numbers,
    gcs_phrases,
    pf_capped_phrase,
    pf_phrases,
    str_texts,
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


#: a column of a template: values, or ``(codes, labels)`` (grouped on the integer codes,
#: the template gets ``labels[codes]``; see :func:`core.derive.primitives.take_codes`)
Column = np.ndarray | tuple[np.ndarray, np.ndarray]


def render(
    template: Callable[..., np.ndarray], cols: dict[str, Column], mask: np.ndarray
) -> np.ndarray:
    """``template(*cols)`` on the masked rows (None elsewhere), built column-wise.

    Rows are factorised on their combination of values (:func:`_combination_codes`; floats
    rounded to the 2 decimals the texts show, so a comparison such as "total != per 24 h"
    is made on the numbers as printed) and the template runs once, on whole columns of the
    distinct combinations: it formats each number or label once per distinct value
    (:func:`core.derive.rule_text.fmt_numbers`, :func:`~core.derive.rule_text.str_texts`)
    and joins the pieces per combination; the texts are then broadcast back to the rows.
    A ``(codes, labels)`` column is grouped on its codes: no label string is hashed per row.
    """
    out = np.full(mask.size, None, dtype=object)
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return out
    values = [
        v[0][idx]
        if isinstance(v, tuple)
        else np.round(v[idx], 2)
        if v.dtype.kind == "f"
        else v[idx]
        for v in cols.values()
    ]
    codes = _combination_codes(values)
    first = np.empty(int(codes.max()) + 1, dtype=np.int64)
    first[codes[::-1]] = np.arange(codes.size)[::-1]
    args = (
        c[1][v[first]] if isinstance(c, tuple) else v[first]
        for c, v in zip(cols.values(), values, strict=True)
    )
    out[idx] = template(*args)[codes]
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


def _texts(rows: list[str]) -> np.ndarray:
    """A list of texts as an object array (no detour through a fixed-width str array)."""
    out = np.empty(len(rows), dtype=object)
    out[:] = rows
    return out


def _threshold_template(label: str, canon_unit: str, phrases: tuple[str, ...]) -> Callable:
    """Template for single-threshold organs (platelets, bilirubin, creatinine)."""
    phrase_of = np.array(phrases, dtype=object)

    def template(
        val: np.ndarray, unit: np.ndarray, canon: np.ndarray, score: np.ndarray, si: np.ndarray
    ) -> np.ndarray:
        conv = [
            f" = {c} {canon_unit}" if other else ""
            for c, other in zip(fmt_numbers(canon), (unit != canon_unit).tolist(), strict=True)
        ]
        phrase = np.where(si, "on the printed SI bands", phrase_of[score])
        return _texts(
            [
                f"{label} {v} {u}{c} {p} -> {s}"
                for v, u, c, p, s in zip(
                    fmt_numbers(val), str_texts(unit), conv, phrase, str_texts(score), strict=True
                )
            ]
        )

    return template


def _cns_template() -> Callable:
    """Template of the CNS text (sedation: the substituted pre-sedation GCS)."""
    phrase_of = np.array(gcs_phrases(), dtype=object)
    normal = _fmt(GCS_NORMAL)

    def template(
        sedated: np.ndarray, charted: np.ndarray, pre: np.ndarray, score: np.ndarray
    ) -> np.ndarray:
        return _texts(
            [
                f"GCS {c} {p} -> {s}"
                if not sed
                else (
                    f"sedated: no GCS before sedation -> {normal} "
                    f"(charted during sedation: {c}) -> {s}"
                    if none_before
                    else f"sedated: pre-sedation GCS {b} (charted during sedation: {c}) {p} -> {s}"
                )
                for sed, none_before, c, b, p, s in zip(
                    sedated.tolist(),
                    np.isnan(pre).tolist(),
                    fmt_numbers(charted),
                    fmt_numbers(pre),
                    phrase_of[score],
                    str_texts(score),
                    strict=True,
                )
            ]
        )

    return template


def _resp_template() -> Callable:
    """Template of the respiration text (PaO2, FiO2, P/F, support cap)."""
    phrase_of = np.array(pf_phrases(), dtype=object)
    capped_phrase = pf_capped_phrase()

    def template(
        pao2: np.ndarray,
        pao2_unit: np.ndarray,
        pao2_mmhg: np.ndarray,
        fio2: np.ndarray,
        fio2_unit: np.ndarray,
        pf: np.ndarray,
        capped: np.ndarray,
        score: np.ndarray,
    ) -> np.ndarray:
        conv = [
            f" = {m} mmHg" if other else ""
            for m, other in zip(fmt_numbers(pao2_mmhg), (pao2_unit != "mmHg").tolist(), strict=True)
        ]
        phrase = np.where(capped, capped_phrase, phrase_of[score])
        return _texts(
            [
                f"PaO2 {a} {au}{c} / FiO2 {f} {fu} = P/F {r} mmHg {p} -> {s}"
                for a, au, c, f, fu, r, p, s in zip(
                    fmt_numbers(pao2),
                    str_texts(pao2_unit),
                    conv,
                    fmt_numbers(fio2),
                    str_texts(fio2_unit),
                    fmt_numbers(pf),
                    phrase,
                    str_texts(score),
                    strict=True,
                )
            ]
        )

    return template


def _urine_template() -> Callable:
    """Template of the urine-output text (sum, hours, scaled to 24 h)."""
    phrases = urine_phrases()
    phrase_of = np.array([phrases.get(k) for k in range(max(phrases) + 1)], dtype=object)

    def template(
        total: np.ndarray,
        hours: np.ndarray,
        per_24h: np.ndarray,
        u_score: np.ndarray,
        score: np.ndarray,
    ) -> np.ndarray:
        scaled = [
            f"-> {x} mL/24h " if differs else ""
            for x, differs in zip(fmt_numbers(per_24h), (total != per_24h).tolist(), strict=True)
        ]
        return _texts(
            [
                f"urine {t} mL over {h} h {x}{p} -> {s}"
                for t, h, x, p, s in zip(
                    fmt_numbers(total),
                    fmt_numbers(hours),
                    scaled,
                    phrase_of[u_score.astype(np.int64)],
                    str_texts(score),
                    strict=True,
                )
            ]
        )

    return template


def _cv_template(rules: SofaRules) -> Callable:
    """Template of the cardiovascular text (deciding drug and run, or MAP)."""
    duration = vasopressor_duration_text(rules)
    map_cut = _fmt(_sofa.MAP_MMHG_SCORE1_BELOW)
    n_drugs = len(SCORED_DRUGS)
    drug_of = np.array([*SCORED_DRUGS, None, None], dtype=object)

    def template(
        decider: np.ndarray,
        rate: np.ndarray,
        received: np.ndarray,
        unit: np.ndarray,
        minutes: np.ndarray,
        mapv: np.ndarray,
        low_map: np.ndarray,
        score: np.ndarray,
    ) -> np.ndarray:
        out = np.empty(decider.size, dtype=object)
        s_text = str_texts(score)
        drug = np.flatnonzero(decider < n_drugs)
        out[drug] = _texts(
            [
                f"{d} {r} mcg/kg/min (received {rv} {u}) for {m} min ({duration}) -> {s}"
                for d, r, rv, u, m, s in zip(
                    drug_of[decider[drug]],
                    fmt_numbers(rate[drug]),
                    fmt_numbers(received[drug]),
                    str_texts(unit[drug]),
                    fmt_numbers(minutes[drug]),
                    s_text[drug],
                    strict=True,
                )
            ]
        )
        by_map = np.flatnonzero(decider == n_drugs)
        op = np.where(low_map[by_map], f"< {map_cut}", f">= {map_cut}, no qualifying vasopressor")
        out[by_map] = _texts(
            [
                f"MAP {v} mmHg {o} -> {s}"
                for v, o, s in zip(fmt_numbers(mapv[by_map]), op, s_text[by_map], strict=True)
            ]
        )
        neither = np.flatnonzero(decider > n_drugs)
        out[neither] = _texts(
            [f"no qualifying vasopressor and MAP missing -> {s}" for s in s_text[neither]]
        )
        return out

    return template


def _imputed_template(kind: np.ndarray, src_day: np.ndarray) -> np.ndarray:
    """Rule text of an imputed component (names the policy and the source day)."""
    out = _texts([f"missing -> 0 ({k})" for k in str_texts(kind)])
    out[kind == "day1_zero"] = "missing on study day 1 -> 0 (day1_zero)"
    locf = np.flatnonzero(kind == "locf")
    codes, days = pd.factorize(src_day[locf])
    texts = _texts(
        [f"missing -> carried forward from study day {int(d)} (locf)" for d in days.tolist()]
    )
    out[locf] = texts[codes]
    return out


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

    i_unit_codes, i_unit_labels = coded(i_unit)

    def take(arr: np.ndarray, rows: np.ndarray, fill: object) -> np.ndarray:
        if arr.size == 0:
            return np.full(rows.size, fill)
        return np.where(rows >= 0, arr[np.maximum(rows, 0)], fill)

    def comp(organ: Organ) -> np.ndarray:
        return raw_components[organ].to_numpy(dtype=np.int64, na_value=-1)

    def o_unit_at(rows: np.ndarray, fill: object = "") -> np.ndarray:
        return take_col(obs["unit_as_received"], rows, fill)

    def o_unit_codes(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return take_codes(obs["unit_as_received"], rows, "")

    def unit_is_si(rows: np.ndarray) -> np.ndarray:
        if not si:
            return np.zeros(rows.size, dtype=bool)
        codes, labels = o_unit_codes(rows)
        u = pd.Series(labels).astype(str).str.casefold()
        return u.str.contains("mol").to_numpy()[codes]

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
            _threshold_template(label, canon_unit, phrases),
            {
                "v": take(o_val, rows, np.nan),
                "u": o_unit_codes(rows),
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
        _cns_template(),
        {"sed": sed, "c": take(o_val, rows, np.nan), "p": pre, "s": score},
        (rows >= 0) & (score >= 0),
    )
    from_obs(Organ.CNS, np.where(sed & (src >= 0), src, rows), rule)

    # respiration
    pf, rows, _ = placed["pf"]
    score = comp(Organ.RESPIRATION)
    frow = extras["fio2_row"]
    rule = render(
        _resp_template(),
        {
            "pa": take(o_val, rows, np.nan),
            "pu": o_unit_codes(rows),
            "pm": take(o_canon, rows, np.nan),
            "fi": take(o_val, frow, np.nan),
            "fu": o_unit_codes(frow),
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
        ),
        {
            "v": take(o_val, c_rows, np.nan),
            "u": o_unit_codes(c_rows),
            "c": creat,
            "s": score,
            "si": unit_is_si(c_rows),
        },
        ~use_urine & (c_rows >= 0) & (score >= 0),
    )
    u_rule = render(
        _urine_template(),
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
        _cv_template(rules),
        {
            "d": decider,
            "r": rate,
            "rv": take(i_val, inf_rows, np.nan),
            "u": (
                np.where(inf_rows >= 0, i_unit_codes[np.maximum(inf_rows, 0)], i_unit_labels.size),
                np.append(i_unit_labels, np.array([""], dtype=object)),
            ),
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
