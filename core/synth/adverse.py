"""Raw ``adverse_events`` (MedDRA-like SOC / PT; weights invented, signals as published:
clinical.md 1.8.4)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

import numpy as np
import pandas as pd

from core.synth._base import DAY_S, HOUR_S, choose, expand, round_half_up, to_datetime
from core.synth.charting import Charting
from core.synth.cohort import Cohort
from core.synth.published import SAE_EVENTS, scaled

__all__ = [
    "ANAKINRA_FACTORS",
    "IFN_FACTORS",
    "NONSERIOUS_TERMS",
    "SAE_TERMS",
    "emit_adverse_events",
]

#: (soc, pt, weight, aesi)
SAE_TERMS: Final = (
    ("Infections and infestations", "Septic shock", 12.0, None),
    ("Infections and infestations", "Pneumonia", 8.0, None),
    ("Infections and infestations", "Ventilator-associated pneumonia", 5.0, None),
    ("Infections and infestations", "Bacteraemia", 4.0, None),
    ("Infections and infestations", "Candidaemia", 2.0, None),
    (
        "Respiratory, thoracic and mediastinal disorders",
        "Acute respiratory distress syndrome",
        5.0,
        None,
    ),
    ("Respiratory, thoracic and mediastinal disorders", "Respiratory failure", 6.0, None),
    ("Cardiac disorders", "Cardiac arrest", 5.0, None),
    ("Cardiac disorders", "Atrial fibrillation", 4.0, None),
    ("Cardiac disorders", "Bradycardia", 2.0, None),
    ("Vascular disorders", "Haemorrhage", 1.5, "hemorrhage"),
    ("Vascular disorders", "Hypotension", 3.0, None),
    ("Vascular disorders", "Deep vein thrombosis", 1.0, None),
    ("Blood and lymphatic system disorders", "Anaemia", 2.0, "anemia"),
    ("Blood and lymphatic system disorders", "Thrombocytopenia", 2.0, None),
    ("Blood and lymphatic system disorders", "Disseminated intravascular coagulation", 1.5, None),
    ("Gastrointestinal disorders", "Gastrointestinal haemorrhage", 1.5, "hemorrhage"),
    ("Gastrointestinal disorders", "Ileus", 1.5, None),
    ("Renal and urinary disorders", "Acute kidney injury", 6.0, None),
    (
        "General disorders and administration site conditions",
        "Multiple organ dysfunction syndrome",
        10.0,
        None,
    ),
    ("Metabolism and nutrition disorders", "Metabolic acidosis", 2.0, None),
    ("Nervous system disorders", "Cerebral haemorrhage", 0.5, "hemorrhage"),
    ("Nervous system disorders", "Encephalopathy", 1.5, None),
    ("Hepatobiliary disorders", "Hepatic failure", 1.5, None),
)
NONSERIOUS_TERMS: Final = (
    ("Investigations", "Blood creatinine increased", 3.0, None),
    ("Investigations", "Gamma-glutamyltransferase increased", 2.5, None),
    ("Investigations", "Blood fibrinogen decreased", 1.5, None),
    ("Metabolism and nutrition disorders", "Hypokalaemia", 3.0, None),
    ("Metabolism and nutrition disorders", "Hyperglycaemia", 2.5, None),
    ("Gastrointestinal disorders", "Constipation", 2.5, None),
    ("Gastrointestinal disorders", "Ileus", 1.5, None),
    ("Psychiatric disorders", "Delirium", 2.5, None),
    ("Cardiac disorders", "Bradycardia", 2.0, None),
    ("Blood and lymphatic system disorders", "Anaemia", 2.0, "anemia"),
    ("Skin and subcutaneous tissue disorders", "Pressure ulcer", 1.5, None),
    ("Vascular disorders", "Haemorrhage", 0.8, "hemorrhage"),
    ("General disorders and administration site conditions", "Pyrexia", 2.0, None),
)
#: multipliers of term weights on an active product (published scenario only): more anaemia
#: with anakinra, less ileus; more haemorrhage, creatinine increase, fibrinogen decrease and
#: GGT increase, less bradycardia with rhIFN-gamma (clinical.md 1.8.4) [weights U]
ANAKINRA_FACTORS: Final = MappingProxyType({"Anaemia": 2.5, "Ileus": 0.4})
IFN_FACTORS: Final = MappingProxyType(
    {
        "Haemorrhage": 2.5,
        "Gastrointestinal haemorrhage": 2.5,
        "Cerebral haemorrhage": 2.0,
        "Bradycardia": 0.4,
        "Blood creatinine increased": 2.0,
        "Blood fibrinogen decreased": 2.0,
        "Gamma-glutamyltransferase increased": 2.0,
    }
)


def _term_probs(terms, factors) -> np.ndarray:
    """Term probabilities: weights times the product factors (1 for a term not listed)."""
    w = np.array([t[2] * factors.get(t[1], 1.0) for t in terms])
    return w / w.sum()


def emit_adverse_events(
    rng: np.random.Generator, c: Cohort, ch: Charting, *, null: bool
) -> pd.DataFrame:
    """The ``adverse_events`` table: patients with a serious event exactly as published per arm
    and stratum, events spread over 90 days, product signals unless ``null``."""
    pid, anchor, death_s = ch.pid, ch.anchor, ch.death_s
    m = c.m
    arm = c.arm
    mals = c.mals
    # stratum: 0 anakinra, 1 rhIFN-gamma, 2 placebo MALS, 3 placebo SIP
    stratum = np.where(arm == 0, np.where(mals, 0, 1), np.where(mals, 2, 3))
    has_sae = np.zeros(m, bool)
    for a in (0, 1):
        for is_m, key in ((True, "sae_mals"), (False, "sae_sip")):
            grp = (arm == a) & (mals == is_m)
            has_sae |= choose(rng, grp, scaled(key, a, int(grp.sum()), null=null), np.zeros(m))
    n_events = round_half_up(m * SAE_EVENTS[0] / SAE_EVENTS[1])
    k_sae = has_sae.astype(np.int64)
    extra = max(n_events - int(k_sae.sum()), 0)
    if has_sae.any():
        k_sae[has_sae] += rng.multinomial(extra, np.full(int(has_sae.sum()), 1 / has_sae.sum()))
    k_ns = rng.poisson(1.3, m)
    no_factor: MappingProxyType = MappingProxyType({})
    fac = (ANAKINRA_FACTORS, IFN_FACTORS, no_factor, no_factor) if not null else (no_factor,) * 4
    out = []
    for serious, terms, counts in ((True, SAE_TERMS, k_sae), (False, NONSERIOUS_TERMS, k_ns)):
        own, _ = expand(counts)
        term = np.zeros(own.size, np.int64)
        for s in range(4):
            sel = np.flatnonzero(stratum[own] == s)
            # stratified uniforms (one per 1/n slice, in random order): each term's share of
            # the stratum's events is its probability within one event, so the product
            # signals hold at any seed, even in the small MALS strata
            u = (rng.permutation(sel.size) + rng.random(sel.size)) / max(sel.size, 1)
            cum = np.cumsum(_term_probs(terms, fac[s]))[:-1]
            term[sel] = np.searchsorted(cum, u, side="right")
        window = np.minimum(death_s[own], anchor[own] + 90 * DAY_S) - anchor[own] - HOUR_S
        onset = anchor[own] + HOUR_S // 2 + (rng.beta(1.0, 2.5, own.size) * window).astype(np.int64)
        severe = rng.random(own.size) < (0.4 if serious else 0.15)
        p_rel = np.where((arm[own] == 0) & (not null), 0.03, 0.012)
        related = rng.random(own.size) < p_rel
        out.append((own, term, onset, np.full(own.size, serious), severe, related, terms))
    pats, socs, pts, onsets, sers, sevs, rels, aesis = [], [], [], [], [], [], [], []
    for own, term, onset, ser, sev, rel, terms in out:
        soc = np.array([t[0] for t in terms], dtype=object)
        pt = np.array([t[1] for t in terms], dtype=object)
        ae = np.array([t[3] for t in terms], dtype=object)
        pats.append(own)
        socs.append(soc[term])
        pts.append(pt[term])
        onsets.append(onset)
        sers.append(ser)
        sevs.append(sev)
        rels.append(rel)
        aesis.append(ae[term])
    p = np.concatenate(pats)
    onset = np.concatenate(onsets)
    pt = np.concatenate(pts)
    pt_code = np.unique(pt.astype(str), return_inverse=True)[1]
    order = np.lexsort((pt_code, onset, p))
    return pd.DataFrame(
        {
            "patient_id": pid[p[order]],
            "onset_time": to_datetime(onset[order]),
            "soc": np.concatenate(socs)[order],
            "pt": pt[order],
            "serious": np.concatenate(sers)[order],
            "severe": np.concatenate(sevs)[order],
            "related": np.concatenate(rels)[order],
            "aesi": np.concatenate(aesis)[order],
        }
    )
