"""The study-day grid: raw long data -> one row per patient-day -> scored, filled, explained.

:func:`derive_daily_sofa` runs one step per organ input on shared integer arrays
(:class:`_Obs`), each returning the worst value per patient-day key and the row that attains
it; :class:`_Grid` places those on the grid of study days 1..D per patient; then
:func:`core.sofa.score_sofa`, :func:`core.derive.impute.fill_trajectory` and
:func:`core.derive.provenance.build_provenance`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import pandas as pd

from core.concepts import SCORED_DRUGS, SOFA_OBSERVATION_VARIABLES, aggregate_of
from core.derive.impute import fill_trajectory
from core.derive.primitives import (
    Clock,
    assign_study_day,
    daily_urine,
    daily_worst_values,
    expand_over_days,
    gcs_under_sedation,
    locate_interval,
    match_pao2_fio2,
    merge_intervals,
    run_codes,
    take_col,
)
from core.derive.provenance import PROVENANCE_COLUMNS, build_provenance
from core.derive.vasopressors import qualifying_infusions
from core.exceptions import DataValidationError, Problem
from core.rules import SofaRules
from core.sofa import score_respiration, score_sofa
from core.sofa2 import score_sofa2
from core.time import as_ns, day_start_ns
from core.units import CANONICAL_UNITS, normalize_infusions, normalize_observations_coded
from core.vocab import RESPIRATORY_SUPPORT_KINDS, SOFA_COLUMNS, EpisodeKind, Organ

#: observation variables the derivation reads (others, e.g. ferritin, are ignored here)
SOFA_OBS_VARIABLES: Final = SOFA_OBSERVATION_VARIABLES
#: single-value organ inputs reduced by their concept's daily aggregate (min / max)
_DAILY_WORST_VARIABLES: Final = ("platelets", "bilirubin", "creatinine", "map")

#: score_sofa input column -> the organ-input name of the worst-value steps
_INPUT_OF: Final = MappingProxyType(
    {
        "pao2_fio2_mmhg": "pf",
        "platelets_10e3_per_ul": "platelets",
        "bilirubin_mg_dl": "bilirubin",
        "map_mmhg": "map",
        "dopamine_mcg_kg_min": "dopamine",
        "dobutamine_mcg_kg_min": "dobutamine",
        "epinephrine_mcg_kg_min": "epinephrine",
        "norepinephrine_mcg_kg_min": "norepinephrine",
        "gcs_total": "gcs",
        "creatinine_mg_dl": "creatinine",
        "urine_output_ml_24h": "urine",
    }
)

#: (grid keys, worst values, source row positions) of one organ input
Worst = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class DailySofa:
    """Daily SOFA trajectory and its provenance (docs/architecture.md "Engine API").

    Attributes
    ----------
    daily
        One row per ``patient_id`` x ``study_day``: the score_sofa inputs, ``rrt``, the six
        ``sofa_<organ>`` components after the missing-component policy, ``sofa_total``,
        ``<organ>_imputed`` (bool), ``<organ>_imputation`` (None | 'day1_zero' | 'locf' |
        'zero'), ``n_components_observed`` and ``sofa2_total`` (display only, SRC-SOFA2).
    provenance
        Long: ``patient_id, study_day, organ, score, variable, value, unit, time, source, rule,
        imputed, imputation``; ``value`` / ``unit`` as received.
    """

    daily: pd.DataFrame
    provenance: pd.DataFrame


def _codes(values: pd.Series, categories: pd.Index) -> np.ndarray:
    """Integer code of each value in ``categories`` (-1 = unknown), as
    ``pd.Categorical(values, categories=categories).codes``: text columns are looked up once
    per run of equal values (:func:`core.derive.primitives.run_codes`; patient ids come in
    long runs)."""
    if values.dtype == object:
        return run_codes(values.to_numpy(), categories)
    return pd.Categorical(values, categories=categories).codes.astype(np.int64)


def _prepare_patients(patients: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Patient ids, anchor and death times (int64 ns); every problem raised at once."""
    problems = [
        Problem("patients", None, c, None, "a column of this name")
        for c in ("patient_id", "anchor_time")
        if c not in patients
    ]
    if problems:
        raise DataValidationError(problems)
    pids = pd.Index(patients["patient_id"].astype(str))
    anchor = pd.to_datetime(patients["anchor_time"], errors="coerce", cache=False)
    bad = np.flatnonzero(anchor.isna().to_numpy() | pids.duplicated())
    if bad.size:
        raise DataValidationError(
            Problem(
                "patients",
                int(i) + 1,
                "anchor_time",
                patients["anchor_time"].iloc[i],
                "a unique patient_id with a first-dose date-time",
                patient_id=str(pids[i]),
            )
            for i in bad
        )
    death = (
        pd.to_datetime(patients["death_time"], errors="coerce", cache=False)
        if "death_time" in patients
        else pd.Series(pd.NaT, index=patients.index, dtype="datetime64[ns]")
    )
    return pids, as_ns(anchor), as_ns(death)


def _unknown_patients(frame: pd.DataFrame, codes: np.ndarray, where: str, tcol: str) -> None:
    """Raise DataValidationError for rows whose patient is not in ``patients``."""
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        ids = frame["patient_id"].to_numpy()[bad]
        _, first = np.unique(ids.astype(str), return_index=True)
        raise DataValidationError(
            Problem(
                where,
                int(bad[i]) + 1,
                "patient_id",
                ids[i],
                "a patient_id present in patients",
                patient_id=str(ids[i]),
                time=str(frame[tcol].iloc[bad[i]]),
            )
            for i in first
        )


@dataclass(frozen=True)
class _Obs:
    """Normalised observations as arrays, shared by every organ step."""

    pcode: np.ndarray
    time: np.ndarray
    value: np.ndarray
    var: np.ndarray
    anchor: np.ndarray
    day: np.ndarray
    in_window: np.ndarray
    daykey: np.ndarray
    clock: Clock

    def subset(self, var: str, *, window_only: bool = True) -> np.ndarray:
        """Rows of ``var`` sorted by (patient, time), so ties resolve to the earliest row."""
        mask = self.var == SOFA_OBS_VARIABLES.index(var)
        if window_only:
            mask &= self.in_window
        idx = np.flatnonzero(mask)
        return idx[np.argsort(self.clock.key(self.pcode[idx], self.time[idx]), kind="stable")]


@dataclass(frozen=True)
class _Episodes:
    """Episodes as arrays: patient code, kind, start and stop (int64 ns)."""

    pcode: np.ndarray
    kind: np.ndarray
    start: np.ndarray
    stop: np.ndarray


def _episodes(episodes: pd.DataFrame, pids: pd.Index) -> _Episodes:
    """Episodes as arrays; unknown patients raise DataValidationError."""
    ep = episodes
    if not len(ep):
        e = np.zeros(0, dtype=np.int64)
        return _Episodes(e, np.zeros(0, dtype=object), e, e)
    e_p = _codes(ep["patient_id"], pids)
    _unknown_patients(ep, e_p, "episodes", "start")
    return _Episodes(e_p, ep["kind"].astype(str).to_numpy(), as_ns(ep["start"]), as_ns(ep["stop"]))


def _lab_steps(o: _Obs) -> dict[str, Worst]:
    """Platelets, bilirubin, creatinine, MAP: the worst value of each study day.

    Worst = the variable's daily aggregate in :mod:`core.concepts` (min platelets and MAP,
    max bilirubin and creatinine; clinical.md 2.8).
    """
    worst: dict[str, Worst] = {}
    for var in _DAILY_WORST_VARIABLES:
        how = aggregate_of(var)
        idx = o.subset(var)
        k, w, pos = daily_worst_values(o.daykey[idx], o.value[idx], how=how, presorted=True)
        worst[var] = (k, w, idx[pos])
    return worst


def _support_intervals(
    ep: _Episodes, rules: SofaRules
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Mask of support episodes and their merged (patient, start, stop) intervals."""
    sup = np.isin(ep.kind, RESPIRATORY_SUPPORT_KINDS[rules.respiratory_support])
    sp_p, sp_s, sp_e, _ = merge_intervals(ep.pcode[sup], ep.start[sup], ep.stop[sup])
    return sup, (sp_p, sp_s, sp_e)


def _respiration_step(
    o: _Obs, support: tuple[np.ndarray, np.ndarray, np.ndarray], rules: SofaRules
) -> tuple[Worst, np.ndarray, np.ndarray]:
    """P/F: the PaO2 with the highest respiration score given support *at that time*.

    Returns the worst P/F per day, whether support ran at the deciding PaO2 and the row of
    the FiO2 matched to it (charted up to ``rules.fio2_match_window_hours`` before).
    """
    max_day = rules.max_study_day
    pa = o.subset("pao2")
    fi = o.subset("fio2", window_only=False)
    fi = fi[o.day[fi] <= max_day]
    j = match_pao2_fio2(
        o.pcode[pa], o.time[pa], o.pcode[fi], o.time[fi], window_hours=rules.fio2_match_window_hours
    )
    matched = j >= 0
    pa, j = pa[matched], j[matched]
    fio2_row = fi[j]
    pf = o.value[pa] / o.value[fio2_row]
    sp_p, sp_s, sp_e = support
    supported = locate_interval(o.clock, o.pcode[pa], o.time[pa], sp_p, sp_s, sp_e) >= 0
    resp_pts = score_respiration(pf, supported)
    badness = resp_pts.astype(np.float64) * 1e6 - pf
    k, _, pos = daily_worst_values(o.daykey[pa], badness, how="max", presorted=True)
    return (k, pf[pos], pa[pos]), supported[pos], fio2_row[pos]


def _cns_step(o: _Obs, ep: _Episodes, rules: SofaRules) -> tuple[Worst, np.ndarray, np.ndarray]:
    """GCS (all GCS rows: a pre-sedation GCS may precede the anchor); worst = lowest.

    Returns the worst effective GCS per day, whether it was charted under sedation and the
    row of the substituted pre-sedation GCS (-1 = none, 15 assumed).
    """
    g_all = o.subset("gcs_total", window_only=False)
    sed = ep.kind == EpisodeKind.SEDATION
    eff, sedated, src = gcs_under_sedation(
        o.pcode[g_all],
        o.time[g_all],
        o.value[g_all],
        ep.pcode[sed],
        ep.start[sed],
        ep.stop[sed],
        rules=rules,
    )
    keep = o.in_window[g_all]
    g_idx, eff, sedated, src = g_all[keep], eff[keep], sedated[keep], src[keep]
    how = aggregate_of("gcs_total")
    k, w, pos = daily_worst_values(o.daykey[g_idx], eff, how=how, presorted=True)
    src_row = np.where(src[pos] >= 0, g_all[np.maximum(src[pos], 0)], -1)
    return (k, w, g_idx[pos]), sedated[pos], src_row


def _urine_step(o: _Obs, rules: SofaRules) -> tuple[Worst, np.ndarray, np.ndarray]:
    """Urine output per day scaled to 24 h (missing if observed too briefly)."""
    u = o.subset("urine_output")
    day_start = day_start_ns(o.anchor[u], o.day[u], rules)
    k, scaled, u_sum, u_hours, pos = daily_urine(
        o.daykey[u],
        o.value[u],
        o.time[u],
        day_start,
        min_observed_hours=rules.urine_min_observed_hours,
    )
    return (k, scaled, u[pos]), u_sum, u_hours


def _vasopressor_step(
    inf: pd.DataFrame, pids: pd.Index, anchor_all: np.ndarray, rules: SofaRules
) -> dict[str, Worst]:
    """Highest qualifying rate per drug and day, plus the run length (``<drug>_minutes``)."""
    span_days = rules.max_study_day + 1
    drugs = inf["drug"].astype(str).to_numpy()
    i_p = _codes(inf["patient_id"], pids) if len(inf) else np.zeros(0, dtype=np.int64)
    if len(inf):
        _unknown_patients(inf, i_p, "infusions", "start")
    i_rate = inf["rate_mcg_kg_min"].to_numpy(dtype=np.float64) if len(inf) else np.zeros(0)
    # position in SCORED_DRUGS (-1: not scored), one lookup per distinct drug
    drug_code = pd.Categorical(drugs, categories=list(SCORED_DRUGS)).codes.astype(np.int64)
    active = (drug_code >= 0) & (np.nan_to_num(i_rate, nan=0.0) > 0)
    ai = np.flatnonzero(active)
    i_s = as_ns(inf["start"])[ai] if len(inf) else ai
    i_e = as_ns(inf["stop"])[ai] if len(inf) else ai
    qual, run_min = qualifying_infusions(i_p[ai], drug_code[ai], i_s, i_e, rules=rules)
    qi = ai[qual]
    rows, vday = expand_over_days(anchor_all[i_p[qi]], i_s[qual], i_e[qual], rules)
    seg = qi[rows]
    seg_minutes = run_min[qual][rows]
    worst: dict[str, Worst] = {}
    for d_i, drug in enumerate(SCORED_DRUGS):
        m = drug_code[seg] == d_i
        key = i_p[seg[m]] * span_days + vday[m]
        k, w, pos = daily_worst_values(key, i_rate[seg[m]], how=aggregate_of(drug))
        worst[drug] = (k, w, seg[m][pos])
        worst[drug + "_minutes"] = (k, seg_minutes[m][pos], seg[m][pos])
    return worst


class _Grid:
    """Study days 1..D per patient, D = min(max day, last day with data, day of death)."""

    def __init__(
        self,
        worst: dict[str, Worst],
        anchor_all: np.ndarray,
        death_all: np.ndarray,
        rules: SofaRules,
    ) -> None:
        n_pat = anchor_all.size
        max_day = rules.max_study_day
        self.span_days = span = max_day + 1
        last_day = np.zeros(n_pat, dtype=np.int64)
        for keys, _, _ in worst.values():
            if keys.size:
                np.maximum.at(last_day, keys // span, keys % span)
        death_day = np.where(
            death_all != np.iinfo(np.int64).min,
            assign_study_day(death_all, anchor_all, rules),
            max_day,
        )
        self.n_days = np.clip(np.minimum(np.minimum(last_day, death_day), max_day), 0, None)
        self.pat = np.repeat(np.arange(n_pat), self.n_days)
        self.offsets = np.cumsum(self.n_days) - self.n_days
        self.day = np.arange(self.pat.size) - self.offsets[self.pat] + 1
        self.size = self.pat.size
        self.key = self.pat * span + self.day

    def positions(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of keys inside the grid, their grid rows)."""
        p, d = keys // self.span_days, keys % self.span_days
        ok = d <= self.n_days[p]
        return ok, self.offsets[p[ok]] + d[ok] - 1

    def scatter(self, keys: np.ndarray, values: np.ndarray, fill: object) -> np.ndarray:
        """``values`` per key placed on the grid, ``fill`` elsewhere (dtype of ``values``)."""
        ok, gi = self.positions(keys)
        out = np.full(self.size, fill, dtype=values.dtype)
        out[gi] = values[ok]
        return out

    def place(self, w: Worst) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values, obs/infusion row positions and a presence mask on the grid."""
        k, vals, pos = w
        ok, gi = self.positions(k)
        v = np.full(self.size, np.nan)
        rows = np.full(self.size, -1, dtype=np.int64)
        v[gi] = vals[ok]
        rows[gi] = pos[ok]
        present = np.zeros(self.size, dtype=bool)
        present[gi] = True
        return v, rows, present

    def days_with(
        self, ep: _Episodes, mask: np.ndarray, anchor_all: np.ndarray, rules: SofaRules
    ) -> np.ndarray:
        """Grid rows whose study day overlaps an episode selected by ``mask``."""
        sel = np.flatnonzero(mask)
        r, dd = expand_over_days(anchor_all[ep.pcode[sel]], ep.start[sel], ep.stop[sel], rules)
        return np.isin(self.key, ep.pcode[sel][r] * self.span_days + dd)


def derive_daily_sofa(
    observations: pd.DataFrame,
    infusions: pd.DataFrame,
    episodes: pd.DataFrame,
    patients: pd.DataFrame,
    *,
    rules: SofaRules = SofaRules(),
    provenance: bool = True,
) -> DailySofa:
    """Derive daily classic SOFA (plus SOFA-2 total) with provenance from raw long data.

    Parameters
    ----------
    observations
        ``patient_id, time, variable, value, unit[, source]`` (docs/architecture.md), raw or
        already normalised by :func:`core.units.normalize_observations`.
    infusions
        ``patient_id, drug, start, stop, rate, unit`` (raw or normalised).
    episodes
        ``patient_id, kind, start, stop``; kinds ``invasive_ventilation``,
        ``noninvasive_ventilation``, ``cpap``, ``oxygen`` (not support), ``sedation``, ``rrt``.
    patients
        ``patient_id, anchor_time, weight_kg[, death_time]``.
    rules
        :class:`core.rules.SofaRules` (all flags of clinical.md 2.8).
    provenance
        Build the "why this score" table (default). False: ``provenance`` is an empty frame
        and only the scores are computed (the ward's rolling 24 h board, which shows no
        provenance; the comparison with engines that build none).

    Returns
    -------
    DailySofa

    Raises
    ------
    DataValidationError
        Unit / plausibility problems (all at once), unknown patient ids, missing anchors.

    Notes
    -----
    Units: canonical units of :mod:`core.units`. Missing data: a day without any input of an
    organ leaves the component missing before :func:`fill_trajectory`; urine output observed
    for less than ``rules.urine_min_observed_hours`` is missing, not 0; vasopressor rates are
    NaN on days without a qualifying infusion.
    """
    pids, anchor_all, death_all = _prepare_patients(patients)
    if "value_as_received" in observations:
        obs = observations
        var_code = _codes(obs["variable"], pd.Index(SOFA_OBS_VARIABLES))
    else:
        obs, canonical_code = normalize_observations_coded(observations)
        # position in CANONICAL_UNITS -> position in SOFA_OBS_VARIABLES (-1: not read here)
        to_sofa = np.array(
            [
                SOFA_OBS_VARIABLES.index(v) if v in SOFA_OBS_VARIABLES else -1
                for v in CANONICAL_UNITS
            ]
        )
        var_code = to_sofa[canonical_code]
    inf = infusions if "rate_mcg_kg_min" in infusions else normalize_infusions(infusions, patients)

    o_p = _codes(obs["patient_id"], pids)
    _unknown_patients(obs, o_p, "observations", "time")
    o_t = as_ns(obs["time"])
    o_anchor = anchor_all[o_p]
    o_day = assign_study_day(o_t, o_anchor, rules)
    ep = _episodes(episodes, pids)
    o = _Obs(
        pcode=o_p,
        time=o_t,
        value=obs["value"].to_numpy(dtype=np.float64),
        var=var_code,
        anchor=o_anchor,
        day=o_day,
        in_window=(o_day >= 1) & (o_day <= rules.max_study_day),
        daykey=o_p * (rules.max_study_day + 1) + o_day,
        clock=Clock(o_t, ep.start, ep.stop, anchor_all, n_patients=len(pids)),
    )

    # one step per organ input: worst value per patient-day key and the row that attains it
    worst = _lab_steps(o)
    sup, support = _support_intervals(ep, rules)
    worst["pf"], pf_support, pf_fio2_row = _respiration_step(o, support, rules)
    worst["gcs"], gcs_sedated, gcs_src_row = _cns_step(o, ep, rules)
    worst["urine"], u_sum, u_hours = _urine_step(o, rules)
    worst |= _vasopressor_step(inf, pids, anchor_all, rules)

    # --- study-day grid ---------------------------------------------------------------------
    grid = _Grid(worst, anchor_all, death_all, rules)
    placed = {
        name: grid.place(worst[name])
        for name in [*_INPUT_OF.values(), *(d + "_minutes" for d in SCORED_DRUGS)]
    }
    daily = pd.DataFrame(
        {
            "patient_id": pids.to_numpy()[grid.pat],
            "study_day": grid.day.astype(np.int64),
        }
    )
    for col, name in _INPUT_OF.items():
        daily[col] = placed[name][0]
    # respiratory support: at the deciding PaO2 if any, else any support episode that day
    any_support = grid.days_with(ep, sup, anchor_all, rules)
    sup_on_grid = grid.scatter(worst["pf"][0], pf_support, False)
    daily["respiratory_support"] = np.where(placed["pf"][2], sup_on_grid, any_support)
    daily["rrt"] = grid.days_with(ep, ep.kind == EpisodeKind.RRT, anchor_all, rules)

    si = rules.si_units_cutoffs == "use_printed_si_bands"
    if si:
        val_rec = obs["value_as_received"].to_numpy(dtype=np.float64)
        for col, name in (("bilirubin_umol_l", "bilirubin"), ("creatinine_umol_l", "creatinine")):
            rows_ = placed[name][1]
            units_ = pd.Series(take_col(obs["unit_as_received"], rows_, "")).astype(str)
            is_si = (rows_ >= 0) & units_.str.casefold().str.contains("mol").to_numpy()
            daily[col] = np.where(is_si, val_rec[np.maximum(rows_, 0)], np.nan)

    scored = score_sofa(daily, rules=rules)
    raw_components = {org: scored[SOFA_COLUMNS[org]].copy() for org in Organ}
    filled = fill_trajectory(scored, rules=rules)
    s2 = score_sofa2(daily, rules=rules)
    filled["sofa2_total"] = s2["sofa2_total"].to_numpy()
    filled = filled.reset_index(drop=True)
    if not provenance:
        return DailySofa(daily=filled, provenance=pd.DataFrame(columns=list(PROVENANCE_COLUMNS)))

    prov = build_provenance(
        obs=obs,
        inf=inf,
        daily=filled,
        raw_components=raw_components,
        placed=placed,
        extras={
            "pf_support": daily["respiratory_support"].to_numpy(),
            "fio2_row": grid.scatter(worst["pf"][0], pf_fio2_row, -1),
            "gcs_sedated": grid.scatter(worst["gcs"][0], gcs_sedated, False),
            "gcs_src_row": grid.scatter(worst["gcs"][0], gcs_src_row, -1),
            "urine_sum": grid.scatter(worst["urine"][0], u_sum, np.nan),
            "urine_hours": grid.scatter(worst["urine"][0], u_hours, np.nan),
        },
        si=si,
        rules=rules,
    )
    return DailySofa(daily=filled, provenance=prov)
