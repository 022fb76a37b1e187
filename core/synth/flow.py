"""Stage 1, the trial flow: randomisation, arms, phenotypes, withdrawals, sites and times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.synth._base import apportion, hours, round_half_up
from core.synth.published import COUNTRIES, ENROLMENT_DAYS, scaled

__all__ = ["Flow", "draw_flow"]


@dataclass(frozen=True, eq=False)
class Flow:
    """The randomised people (all ``n``, withdrawn included), in randomisation-draw order.

    Attributes
    ----------
    n
        Randomised people.
    arm, is_mals, withdrawn, site, randomised_s, patient_id
        Per person: arm (0 precision, 1 placebo), MALS at screening (else SIP), consent
        withdrawn with data removal, site index, randomisation time (s since the epoch),
        ``SYN-<site>-<nnnn>`` id.
    site_ids, country, site_weights
        Per site: ``SYN-Snn`` id, country, relative enrolment weight.
    sites
        The ``sites`` raw table.
    start_s
        First randomisation date (s since the epoch).
    enrolment_days
        Length of the enrolment period, days (randomisation and screening times are spread
        uniformly over it).
    """

    n: int
    arm: np.ndarray
    is_mals: np.ndarray
    withdrawn: np.ndarray
    site: np.ndarray
    site_ids: np.ndarray
    country: np.ndarray
    site_weights: np.ndarray
    randomised_s: np.ndarray
    patient_id: np.ndarray
    sites: pd.DataFrame
    start_s: int
    enrolment_days: float = ENROLMENT_DAYS


def draw_flow(
    rng: np.random.Generator, n: int, start_s: int, enrolment_days: float = ENROLMENT_DAYS
) -> Flow:
    """Arms, phenotypes, withdrawals, sites and randomisation times of ``n`` randomised people.

    Counts per arm are the published ones scaled to ``n`` (:func:`~core.synth.published.scaled`);
    the 33 sites keep their number at any size. ``enrolment_days`` only scales the uniform
    draws of the randomisation times: the random stream, and so every other table but the
    times, is the same for any enrolment period.
    """
    n_arm = np.array([scaled("randomised", 0, n), 0])
    n_arm[1] = n - n_arm[0]
    withdrawn = np.array([scaled("withdrawn", a, n) for a in (0, 1)])
    analysed = n_arm - withdrawn
    mals = np.array([scaled("mals", a, analysed[a]) for a in (0, 1)])
    # withdrawn: precision 1 MALS + 3 SIP, placebo 1 SIP (invented split)
    w_mals = np.array([round_half_up(withdrawn[0] / 4), 0])

    arm = np.concatenate([np.zeros(n_arm[0], np.int64), np.ones(n_arm[1], np.int64)])
    is_mals = np.zeros(n, bool)
    is_wd = np.zeros(n, bool)
    for a, off in ((0, 0), (1, n_arm[0])):
        # layout inside an arm: [analysed MALS | analysed SIP | withdrawn MALS | withdrawn SIP]
        is_mals[off : off + mals[a]] = True
        w0 = off + analysed[a]
        is_mals[w0 : w0 + w_mals[a]] = True
        is_wd[w0 : w0 + withdrawn[a]] = True
    perm = rng.permutation(n)
    arm, is_mals, is_wd = arm[perm], is_mals[perm], is_wd[perm]

    # sites and countries
    country_of_site: list[str] = []
    site_w: list[float] = []
    for country, k, w in COUNTRIES:
        country_of_site += [country] * k
        site_w += [w] * k
    n_sites = len(country_of_site)
    site_w_arr = np.asarray(site_w) * rng.gamma(4.0, 0.25, n_sites)
    site_counts = apportion(n, site_w_arr)
    site_of = rng.permutation(np.repeat(np.arange(n_sites), site_counts))

    rand_s = start_s + np.sort(hours(rng.random(n) * enrolment_days * 24 + 8.0))
    # patient ids: SYN-<site>-<nnnn>, numbered per site in randomisation order
    seq = np.zeros(n, np.int64)
    for s in range(n_sites):
        m = np.flatnonzero(site_of == s)
        seq[m] = np.arange(1, m.size + 1)
    width = max(4, len(str(int(site_counts.max(initial=1)))))
    pid = np.array(
        [f"SYN-{s + 1:02d}-{q:0{width}d}" for s, q in zip(site_of, seq, strict=True)], dtype=object
    )
    site_ids = np.array([f"SYN-S{s + 1:02d}" for s in range(n_sites)], dtype=object)
    sites = pd.DataFrame(
        {
            "site_id": site_ids,
            "name": [f"Synthetic ICU {s + 1:02d} ({c})" for s, c in enumerate(country_of_site)],
            "country": np.array(country_of_site, dtype=object),
        }
    )
    return Flow(
        n=n,
        arm=arm,
        is_mals=is_mals,
        withdrawn=is_wd,
        site=site_of,
        site_ids=site_ids,
        country=np.array(country_of_site, dtype=object),
        site_weights=site_w_arr,
        randomised_s=rand_s,
        patient_id=pid,
        sites=sites,
        start_s=start_s,
        enrolment_days=float(enrolment_days),
    )
