"""ADaM metadata as data: datasets, variables, labels, types, codelists and derivations.

One home for what the ADaM export writes (:mod:`core.io.adam_export`) and for every file that
describes it: the SAS XPORT labels and formats (:mod:`core.io.xpt`), Dataset-JSON 1.1
(:mod:`core.io.dataset_json`) and define.xml 2.1 (:mod:`core.io.define_xml`). The conformance
tests (tests/test_adam_conformance.py) check the exported frames against it. Variables that are
not in the ADaM IG (sponsor extensions) carry ``standard=False`` and are documented in
docs/adam.md; so are the two study-day definitions (``ADY`` by the ADaM rule, ``APRDY`` the
protocol's 24-hour study day, docs/clinical.md 1.5) and the ADTTE definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from core.concepts import CONCEPTS, EXPORT_CODES
from core.derive.rule_text import organ_rule_texts
from core.io.adam import ADSOFA_PARAMCD, STUDYID
from core.rules import EndpointRules, SofaRules
from core.vocab import ARM_LABELS, Arm

Kind = Literal["text", "integer", "float", "date", "datetime"]
Origin = Literal["Derived", "Assigned", "Predecessor"]

#: SAS display formats of the numeric date and datetime variables (XPT and define.xml)
SAS_FORMATS: Final = MappingProxyType({"date": "DATE9.", "datetime": "DATETIME20."})
#: ADaM limits (ADaMIG 1.3 section 3 / SAS XPORT v5): names and labels
MAX_NAME: Final = 8
MAX_LABEL: Final = 40
MAX_DATASET_LABEL: Final = 40


@dataclass(frozen=True)
class Var:
    """One ADaM variable: name (<= 8), label (<= 40), kind, codelist, origin and derivation."""

    name: str
    label: str
    kind: Kind
    derivation: str = ""
    codelist: str | None = None
    origin: Origin = "Derived"
    #: False: a sponsor-defined variable, not in the ADaM IG (documented in docs/adam.md)
    standard: bool = True
    #: only in exports that include the arm (policy.may_compare_groups)
    arm_only: bool = False
    #: only in exports that may list AESI patients (policy.may_list_aesi_patients)
    aesi_only: bool = False


@dataclass(frozen=True)
class Dataset:
    """One ADaM dataset: name, label, class, structure, key variables and variables."""

    name: str
    label: str
    klass: str  # ADaM class (define.xml def:Class)
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Var, ...]
    description: str = ""

    def var(self, name: str) -> Var:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(f"{self.name} has no variable {name!r}")

    def names(self, *, with_arm: bool) -> tuple[str, ...]:
        """Variables (in order) of this dataset in an export with / without the arm."""
        return tuple(v.name for v in self.variables if with_arm or not (v.arm_only or v.aesi_only))


@dataclass(frozen=True)
class Codelist:
    """A codelist: coded value -> decode; ``extended`` names sponsor additions to CDISC CT."""

    oid: str
    name: str
    kind: Kind
    items: tuple[tuple[str, str], ...]
    extended: frozenset[str] = frozenset()
    #: CDISC controlled terminology codelist this one subsets / extends (None: sponsor)
    cdisc: str | None = None


ARM_CODES: Final = MappingProxyType({Arm.PRECISION: "PRECISION", Arm.PLACEBO: "PLACEBO"})
#: TRT01PN / TRTPN / TRTAN numbers
ARM_NUMBERS: Final = MappingProxyType({Arm.PRECISION: 1, Arm.PLACEBO: 2})
#: site country names (db.sites.country) -> ISO 3166-1 alpha-3 (ADSL.COUNTRY)
COUNTRY_ISO3: Final = MappingProxyType(
    {
        "Austria": "AUT",
        "Belgium": "BEL",
        "Bulgaria": "BGR",
        "Cyprus": "CYP",
        "Czechia": "CZE",
        "Denmark": "DNK",
        "Finland": "FIN",
        "France": "FRA",
        "Germany": "DEU",
        "Greece": "GRC",
        "Hungary": "HUN",
        "Ireland": "IRL",
        "Italy": "ITA",
        "Netherlands": "NLD",
        "Norway": "NOR",
        "Poland": "POL",
        "Portugal": "PRT",
        "Romania": "ROU",
        "Spain": "ESP",
        "Sweden": "SWE",
        "Switzerland": "CHE",
        "United Kingdom": "GBR",
        "United States": "USA",
    }
)

#: DTYPE values (CDISC CT C81224 "Derivation Type", extensible): what each means here
DTYPE_TERMS: Final = MappingProxyType(
    {
        "LOCF": "Last observation carried forward: a day without a score takes the last "
        "earlier score of the patient (SAP, SRC-AUDIT).",
        "WC": "Worst case: from the protocol study day of death onward the total SOFA is the "
        "worst possible score (EndpointRules.death_score, 24 points).",
        "BC": "Best case: an organ without any measurement on day 1 scores 0 (normal), the "
        "best possible sub-score (SOFA-2 footnote b, SRC-SOFA2).",
    }
)

ADSOFA_PARAMS: Final = MappingProxyType(
    {
        "SOFA": ("SOFA Total Score (points)", 1),
        "SOFARESP": ("SOFA Respiration Sub-score (points)", 2),
        "SOFACOAG": ("SOFA Coagulation Sub-score (points)", 3),
        "SOFALIVR": ("SOFA Liver Sub-score (points)", 4),
        "SOFACARD": ("SOFA Cardiovascular Sub-score (points)", 5),
        "SOFACNS": ("SOFA CNS Sub-score (points)", 6),
        "SOFAREN": ("SOFA Renal Sub-score (points)", 7),
    }
)
assert set(ADSOFA_PARAMS) == set(ADSOFA_PARAMCD)

#: ADLB PARAMCD -> PARAM (unit in the PARAM, one PARAM per PARAMCD) and PARAMN, from the
#: concept table (core.concepts: the export code, label and canonical unit of each variable)
ADLB_PARAMS: Final = MappingProxyType(
    {
        code: (f"{CONCEPTS[name].label} ({CONCEPTS[name].unit})", n)
        for n, (code, name) in enumerate(EXPORT_CODES.items(), start=1)
    }
)


def adrs_params(rules: EndpointRules) -> dict[str, tuple[str, int]]:
    """ADRS PARAMCD -> (PARAM, PARAMN): one response and one decrease parameter per endpoint."""
    t = f"{rules.threshold:g}"
    out = {}
    for n, last in enumerate((rules.last_day, rules.day15_last_day)):
        out[f"SOFARSP{last}"] = (f"SOFA Response Day {last} (Decrease > {t})", 2 * n + 1)
        out[f"SOFADEC{last}"] = (f"SOFA Decrease Day 1 to Mean Days 2-{last}", 2 * n + 2)
    return out


ADTTE_PARAMS: Final = MappingProxyType(
    {
        "OS28": ("Time to Death up to Day 28 (days)", 1),
        "OS90": ("Time to Death up to Day 90 (days)", 2),
    }
)


def _std(name: str, label: str, kind: Kind, derivation: str = "", **kw: object) -> Var:
    return Var(name, label, kind, derivation, **kw)  # type: ignore[arg-type]


def _ext(name: str, label: str, kind: Kind, derivation: str, **kw: object) -> Var:
    return Var(name, label, kind, derivation, standard=False, **kw)  # type: ignore[arg-type]


_STUDYID = _std("STUDYID", "Study Identifier", "text", f"Assigned: {STUDYID}.", origin="Assigned")
_USUBJID = _std(
    "USUBJID",
    "Unique Subject Identifier",
    "text",
    "patients.patient_id / randomisation.patient_id (unique within the sponsor: it carries the "
    "site code).",
    origin="Predecessor",
)
_APRDY_TEXT = (
    "Protocol study day (docs/clinical.md 1.5, SofaRules.study_day): day n covers "
    "[TRTSDTM + (n-1)*24 h, TRTSDTM + n*24 h); the day before the first dose is day 0. "
    "Differs from ADY (ADaM rule on dates, no day 0)."
)
_ADY_TEXT = "ADaM rule: ADT - TRTSDT + 1 if ADT >= TRTSDT, else ADT - TRTSDT (no day 0)."


def _trt(name: str, label: str, what: str) -> tuple[Var, Var]:
    return (
        _std(name, label, "text", what, codelist="CL.ARM", arm_only=True, origin="Predecessor"),
        _std(
            f"{name}N",
            f"{label} (N)",
            "integer",
            f"{name} as a number: 1 Precision immunotherapy, 2 Placebo.",
            codelist="CL.ARMN",
            arm_only=True,
        ),
    )


def _datasets(rules: SofaRules, endpoint: EndpointRules) -> tuple[Dataset, ...]:
    yn = {"codelist": "CL.NY"}
    yflag = {"codelist": "CL.Y"}
    day9, day15 = endpoint.last_day, endpoint.day15_last_day
    adsl = Dataset(
        "ADSL",
        "Subject-Level Analysis Dataset",
        "SUBJECT LEVEL ANALYSIS DATASET",
        "One record per subject",
        ("STUDYID", "USUBJID"),
        (
            _STUDYID,
            _USUBJID,
            _std(
                "SUBJID",
                "Subject Identifier for the Study",
                "text",
                "= USUBJID.",
                origin="Predecessor",
            ),
            _std(
                "SITEID",
                "Study Site Identifier",
                "text",
                "patients.site_id, else disposition.site_id.",
                origin="Predecessor",
            ),
            _std(
                "COUNTRY",
                "Country",
                "text",
                "ISO 3166-1 alpha-3 of sites.country.",
                codelist="CL.COUNTRY",
            ),
            _std(
                "AGE",
                "Age",
                "integer",
                "patients.age_years (whole years at screening).",
                origin="Predecessor",
            ),
            _std("AGEU", "Age Units", "text", "YEARS.", codelist="CL.AGEU", origin="Assigned"),
            _std("SEX", "Sex", "text", "patients.sex.", codelist="CL.SEX", origin="Predecessor"),
            _std(
                "RACE",
                "Race",
                "text",
                "NOT REPORTED: the trial's data carry no race (CDISC CT C74457).",
                codelist="CL.RACE",
                origin="Assigned",
            ),
            _std(
                "ARMCD",
                "Planned Arm Code",
                "text",
                "randomisation.arm.",
                codelist="CL.ARMCD",
                arm_only=True,
                origin="Predecessor",
            ),
            _std(
                "ARM",
                "Description of Planned Arm",
                "text",
                "randomisation.arm.",
                codelist="CL.ARM",
                arm_only=True,
                origin="Predecessor",
            ),
            _std(
                "ACTARMCD",
                "Actual Arm Code",
                "text",
                "= ARMCD when dosed (SAFFL = Y), else missing.",
                codelist="CL.ARMCD",
                arm_only=True,
            ),
            _std(
                "ACTARM",
                "Description of Actual Arm",
                "text",
                "= ARM when dosed (SAFFL = Y), else missing.",
                codelist="CL.ARM",
                arm_only=True,
            ),
            *_trt("TRT01P", "Planned Treatment for Period 01", "= ARM (one period)."),
            *_trt(
                "TRT01A",
                "Actual Treatment for Period 01",
                "= TRT01P when dosed (SAFFL = Y), else missing (double-dummy design: every dosed subject received the randomised arm).",
            ),
            _std(
                "RANDDT",
                "Date of Randomization",
                "date",
                "Date part of randomisation.randomised_at.",
            ),
            _ext(
                "RANDDTM",
                "Datetime of Randomization",
                "datetime",
                "randomisation.randomised_at.",
                origin="Predecessor",
            ),
            _std("TRTSDT", "Date of First Exposure to Treatment", "date", "Date part of TRTSDTM."),
            _std(
                "TRTSDTM",
                "Datetime of First Exposure to Treatment",
                "datetime",
                "patients.anchor_time: the first study-drug dose (= first doses.time).",
            ),
            _std("TRTEDT", "Date of Last Exposure to Treatment", "date", "Date part of TRTEDTM."),
            _std(
                "TRTEDTM",
                "Datetime of Last Exposure to Treatment",
                "datetime",
                "Last doses.time of the subject.",
            ),
            _std(
                "RANDFL",
                "Randomized Population Flag",
                "text",
                "Y for every randomised subject (randomisation table), withdrawn ones included.",
                **yn,
            ),
            _std(
                "ITTFL",
                "Intent-To-Treat Population Flag",
                "text",
                "Y for every randomised subject (ITT = all randomised).",
                **yn,
            ),
            _std(
                "MITTFL",
                "Modified Intent-To-Treat Population Flag",
                "text",
                "Y when randomised and not withdrawn with data removal (disposition."
                "withdrawn_with_data_removal; the primary analysis population, docs/clinical.md).",
                **yn,
            ),
            _std(
                "SAFFL",
                "Safety Population Flag",
                "text",
                "Y when the subject has at least one study-drug dose (doses table).",
                **yn,
            ),
            _ext(
                "DATRMVFL",
                "Withdrawn with Data Removal Flag",
                "text",
                "disposition.withdrawn_with_data_removal: consent withdrawn and all data removed "
                "(no data but the randomisation).",
                **yn,
            ),
            _std(
                "WEIGHTBL",
                "Baseline Weight (kg)",
                "float",
                "patients.weight_kg.",
                origin="Predecessor",
            ),
            _ext(
                "APACHEII",
                "APACHE II Score at Baseline",
                "integer",
                "patients.apache_ii.",
                origin="Predecessor",
            ),
            _ext(
                "CCI",
                "Charlson Comorbidity Index at Baseline",
                "integer",
                "patients.charlson.",
                origin="Predecessor",
            ),
            _ext(
                "INFSRC",
                "Source of Infection",
                "text",
                "patients.infection_type.",
                origin="Predecessor",
            ),
            _ext(
                "MVBL",
                "Mechanical Ventilation at Baseline",
                "text",
                "patients.mechanical_ventilation as Y/N.",
                **yn,
            ),
            _ext(
                "PHENO",
                "Immune Phenotype at Screening",
                "text",
                "disposition.phenotype_at_screening (MALS: ferritin > 4420 ng/mL; SIP: "
                "HLA-DR < 5000 antibodies/cell and ferritin <= 4420; docs/clinical.md 1.3).",
                codelist="CL.PHENO",
            ),
            _ext(
                "FERRBL",
                "Baseline Ferritin (ng/mL)",
                "float",
                "Ferritin of the first biomarker sample (the screening sample).",
                origin="Predecessor",
            ),
            _ext(
                "HLADRBL",
                "Baseline Monocyte HLA-DR (AB/cell)",
                "float",
                "HLA-DR of the first biomarker sample (the screening sample).",
                origin="Predecessor",
            ),
            _ext(
                "SOFABL",
                "Baseline SOFA Total Score (points)",
                "integer",
                "Total SOFA of protocol study day 1 (ADSOFA PARAMCD SOFA, ABLFL Y).",
            ),
            _std(
                "DTHFL",
                "Subject Death Flag",
                "text",
                "Y when patients.death_time is present, else N.",
                **yn,
            ),
            _std("DTHDT", "Date of Death", "date", "Date part of DTHDTM."),
            _ext(
                "DTHDTM",
                "Datetime of Death",
                "datetime",
                "patients.death_time.",
                origin="Predecessor",
            ),
            _ext(
                "DTHPRDY",
                "Protocol Study Day of Death",
                "integer",
                "Protocol study day of DTHDTM. " + _APRDY_TEXT,
            ),
        ),
        "One record per randomised subject, the subjects withdrawn with data removal included "
        "(RANDFL = ITTFL = Y, MITTFL = N, no data but the randomisation).",
    )
    bds_front = (
        _STUDYID,
        _USUBJID,
        *_trt("TRTP", "Planned Treatment", "= ADSL.TRT01P."),
    )
    organ_text = "; ".join(f"{o.value}: {t}" for o, t in organ_rule_texts(rules).items())
    adsofa = Dataset(
        "ADSOFA",
        "SOFA Score Analysis Dataset",
        "BASIC DATA STRUCTURE",
        "One record per subject per parameter per protocol study day",
        ("STUDYID", "USUBJID", "PARAMCD", "AVISITN"),
        (
            *bds_front,
            _std(
                "PARAMCD",
                "Parameter Code",
                "text",
                "SOFA total or organ sub-score.",
                codelist="CL.PARAMCD.ADSOFA",
            ),
            _std("PARAM", "Parameter", "text", "Decode of PARAMCD.", codelist="CL.PARAM.ADSOFA"),
            _std("PARAMN", "Parameter (N)", "integer", "Number of PARAMCD."),
            _std("AVISIT", "Analysis Visit", "text", "'Day n' for protocol study day n."),
            _std("AVISITN", "Analysis Visit (N)", "integer", "Protocol study day n (= APRDY)."),
            _std("ADT", "Analysis Date", "date", "Date part of ADTM."),
            _std(
                "ADTM",
                "Analysis Datetime",
                "datetime",
                "Start of the protocol study day: TRTSDTM + (AVISITN - 1) * 24 h.",
            ),
            _std("ADY", "Analysis Relative Day", "integer", _ADY_TEXT),
            _ext("APRDY", "Protocol Study Day", "integer", _APRDY_TEXT),
            _std(
                "AVAL",
                "Analysis Value",
                "integer",
                "Daily SOFA (Vincent 1996) from the worst value of each input on the protocol day; "
                f"{organ_text}. Total = sum of the six sub-scores. Imputation: DTYPE.",
            ),
            _std("BASE", "Baseline Value", "integer", "AVAL of protocol study day 1 (ABLFL = Y)."),
            _std("CHG", "Change from Baseline", "integer", "AVAL - BASE."),
            _std("ABLFL", "Baseline Record Flag", "text", "Y on protocol study day 1.", **yflag),
            _std(
                "DTYPE",
                "Derivation Type",
                "text",
                "Missing on scored days; LOCF, WC (days from death on, total only) or BC (an "
                "organ not measured on day 1) on imputed records.",
                codelist="CL.DTYPE",
            ),
            _std(
                "ANL01FL",
                "Analysis Flag 01",
                "text",
                f"Y on the PARAMCD SOFA records of days 1-{day9} that the primary endpoint "
                f"(ADRS SOFARSP{day9}) averages.",
                **yflag,
            ),
            _std(
                "ANL02FL",
                "Analysis Flag 02",
                "text",
                f"Y on the PARAMCD SOFA records of days 1-{day15} that the day-{day15} endpoint "
                f"(ADRS SOFARSP{day15}) averages.",
                **yflag,
            ),
        ),
        f"Daily SOFA, protocol study days 1-{day15}: observed, LOCF-imputed and worst-case "
        "(death) records (DTYPE).",
    )
    endpoint_text = (
        f"Decrease = day-1 total SOFA minus the mean total SOFA of days 2..last day (always "
        f"last day - 1 values: a measured day as is; a day on or after the protocol study day of "
        f"death scores {endpoint.death_score}; a missing day takes the last earlier score, day 1 "
        f"included (LOCF)); responder when decrease > {endpoint.threshold:g} (SAP, SRC-AUDIT; "
        "core.endpoints.sofa_response). A subject without day-1 SOFA or without a score to carry "
        "is not evaluable (EVALFL N) and counts as a non-responder (AVAL 0)."
    )
    adrs = Dataset(
        "ADRS",
        "SOFA Response Analysis Dataset",
        "BASIC DATA STRUCTURE",
        "One record per subject per parameter",
        ("STUDYID", "USUBJID", "PARAMCD"),
        (
            *bds_front,
            _std(
                "MITTFL", "Modified Intent-To-Treat Population Flag", "text", "= ADSL.MITTFL.", **yn
            ),
            _std(
                "PARAMCD",
                "Parameter Code",
                "text",
                "One code per endpoint and measure.",
                codelist="CL.PARAMCD.ADRS",
            ),
            _std("PARAM", "Parameter", "text", "Decode of PARAMCD.", codelist="CL.PARAM.ADRS"),
            _std("PARAMN", "Parameter (N)", "integer", "Number of PARAMCD."),
            _std("AVISIT", "Analysis Visit", "text", "'Day n': the endpoint's last day."),
            _std("AVISITN", "Analysis Visit (N)", "integer", "The endpoint's last day."),
            _std(
                "AVALC",
                "Analysis Value (C)",
                "text",
                "SOFARSPn: Y (responder) or N; missing for SOFADECn.",
                codelist="CL.NY",
            ),
            _std(
                "AVAL",
                "Analysis Value",
                "float",
                "SOFARSPn: 1 if AVALC = Y, 0 if N. SOFADECn: the decrease. " + endpoint_text,
            ),
            _std("BASE", "Baseline Value", "float", "Total SOFA of protocol study day 1."),
            _ext(
                "MEANFU",
                "Mean SOFA Days 2 to Last Day",
                "float",
                "Mean total SOFA of days 2..AVISITN after imputation.",
            ),
            _ext(
                "EVALFL",
                "Evaluable for the Endpoint Flag",
                "text",
                "Y when BASE and every follow-up day are available after imputation.",
                **yn,
            ),
            _ext(
                "NLOCF", "Number of LOCF-Imputed Days", "integer", "Days 2..AVISITN filled by LOCF."
            ),
            _ext(
                "NDEATH",
                "Number of Days Scored After Death",
                "integer",
                f"Days 2..AVISITN on or after the day of death (scored {endpoint.death_score}).",
            ),
        ),
        "SOFA-response endpoints (primary: day 9; secondary: day 15): the response (Y/N, 1/0) "
        "and the decrease as separate parameters. " + endpoint_text,
    )
    adtte_text = (
        "AVAL = DTHPRDY (whole protocol study day of death, docs/clinical.md 1.5) when death "
        "falls on day 1..horizon (CNSR 0); else AVAL = horizon (CNSR 1: alive at the end of "
        "protocol day horizon; vital status follow-up is complete to day 90). These are the "
        "durations of the dashboard's Kaplan-Meier, numbers at risk, medians, log-rank and Cox "
        "(core.endpoints.time_to_death; core.stats.survival). AVAL is NOT ADT - STARTDT + 1: "
        "a death after the first-dose clock time on its calendar day lies one day earlier by "
        "the protocol clock."
    )
    adtte = Dataset(
        "ADTTE",
        "Time-to-Event Analysis Dataset",
        "BASIC DATA STRUCTURE",
        "One record per subject per parameter",
        ("STUDYID", "USUBJID", "PARAMCD"),
        (
            *bds_front,
            _std(
                "MITTFL", "Modified Intent-To-Treat Population Flag", "text", "= ADSL.MITTFL.", **yn
            ),
            _std("PARAMCD", "Parameter Code", "text", "OS28, OS90.", codelist="CL.PARAMCD.ADTTE"),
            _std("PARAM", "Parameter", "text", "Decode of PARAMCD.", codelist="CL.PARAM.ADTTE"),
            _std("PARAMN", "Parameter (N)", "integer", "Number of PARAMCD."),
            _std(
                "STARTDT",
                "Time-to-Event Origin Date for Subject",
                "date",
                "= ADSL.TRTSDT (the clock starts at TRTSDTM).",
            ),
            _std(
                "ADT",
                "Analysis Date",
                "date",
                "Event: DTHDT. Censored: date of TRTSDTM + horizon * 24 h (end of protocol day horizon).",
            ),
            _std("AVAL", "Analysis Value", "integer", adtte_text),
            _std(
                "CNSR",
                "Censor",
                "integer",
                "0 death by the horizon, 1 censored at the horizon.",
                codelist="CL.CNSR",
            ),
            _std(
                "EVNTDESC",
                "Event or Censoring Description",
                "text",
                "DEATH or ALIVE AT END OF DAY n.",
                codelist="CL.EVNTDESC",
            ),
            _std(
                "CNSDTDSC",
                "Censor Date Description",
                "text",
                "END OF PROTOCOL DAY n on censored records; missing on events.",
                codelist="CL.CNSDTDSC",
            ),
            _std("SRCDOM", "Source Data", "text", "ADSL.", origin="Assigned"),
            _std(
                "SRCVAR",
                "Source Variable",
                "text",
                "DTHDT on events, TRTSDT on censored records.",
                origin="Assigned",
            ),
        ),
        "Overall survival to day 28 and day 90 on the protocol study-day clock. " + adtte_text,
    )
    adae = Dataset(
        "ADAE",
        "Adverse Events Analysis Dataset",
        "OCCURRENCE DATA STRUCTURE",
        "One record per subject per adverse event",
        ("STUDYID", "USUBJID", "AESEQ"),
        (
            _STUDYID,
            _USUBJID,
            *_trt("TRTA", "Actual Treatment", "= ADSL.TRT01A."),
            _std(
                "AESEQ",
                "Sequence Number",
                "integer",
                "Order of onset (then PT) within the subject.",
            ),
            _std(
                "AETERM",
                "Reported Term for the Adverse Event",
                "text",
                "adverse_events.pt (verbatim term not kept).",
                origin="Predecessor",
            ),
            _std(
                "AEDECOD",
                "Dictionary-Derived Term",
                "text",
                "adverse_events.pt (MedDRA PT).",
                origin="Predecessor",
            ),
            _std(
                "AEBODSYS",
                "Body System or Organ Class",
                "text",
                "adverse_events.soc (MedDRA SOC).",
                origin="Predecessor",
            ),
            _std(
                "AESEV",
                "Severity/Intensity",
                "text",
                "SEVERE when adverse_events.severe, else missing: the data record severe yes/no "
                "only, not MILD vs MODERATE (CDISC CT C66769).",
                codelist="CL.AESEV",
            ),
            _std(
                "ASEV",
                "Analysis Severity/Intensity",
                "text",
                "SEVERE or NOT SEVERE (adverse_events.severe); NOT SEVERE is a sponsor "
                "extension of the severity codelist (mild or moderate, not told apart).",
                codelist="CL.ASEV",
            ),
            _std("AESER", "Serious Event", "text", "adverse_events.serious as Y/N.", **yn),
            _std("AREL", "Analysis Causality", "text", "adverse_events.related as Y/N.", **yn),
            _std("ASTDT", "Analysis Start Date", "date", "Date part of ASTDTM."),
            _std(
                "ASTDTM",
                "Analysis Start Datetime",
                "datetime",
                "adverse_events.onset_time.",
                origin="Predecessor",
            ),
            _std(
                "ASTDY",
                "Analysis Start Relative Day",
                "integer",
                "ADaM rule: ASTDT - TRTSDT + 1 if ASTDT >= TRTSDT, else ASTDT - TRTSDT (no day 0).",
            ),
            _ext(
                "ASTPRDY",
                "Protocol Study Day of AE Onset",
                "integer",
                "Protocol study day of ASTDTM. " + _APRDY_TEXT,
            ),
            _std(
                "TRTEMFL",
                "Treatment Emergent Analysis Flag",
                "text",
                "Y when ASTDTM >= TRTSDTM, else N.",
                **yn,
            ),
            _ext(
                "AESI",
                "Adverse Event of Special Interest",
                "text",
                "adverse_events.aesi (anemia, hemorrhage; docs/blinding.md 6.4 item 3). Only in "
                "exports with the arm.",
                codelist="CL.AESI",
                aesi_only=True,
            ),
        ),
        "Adverse events. A blinded export (without the arm) has no AESI variable and no record "
        "of a preferred term that is an adverse event of special interest (core.policy."
        "may_list_aesi_patients; the UI hides those patient listings).",
    )
    adlb = Dataset(
        "ADLB",
        "Lab and Vital Signs Analysis Dataset",
        "BASIC DATA STRUCTURE",
        "One record per subject per parameter per analysis datetime",
        ("STUDYID", "USUBJID", "PARAMCD", "ADTM"),
        (
            *bds_front,
            _std(
                "PARAMCD",
                "Parameter Code",
                "text",
                "Variable of the observations / biomarkers tables.",
                codelist="CL.PARAMCD.ADLB",
            ),
            _std(
                "PARAM",
                "Parameter",
                "text",
                "Decode of PARAMCD, with the unit.",
                codelist="CL.PARAM.ADLB",
            ),
            _std("PARAMN", "Parameter (N)", "integer", "Number of PARAMCD."),
            _std(
                "AVISIT",
                "Analysis Visit",
                "text",
                "'Day n' for protocol study day n >= 1, else 'Before First Dose'.",
            ),
            _std("AVISITN", "Analysis Visit (N)", "integer", "APRDY when >= 1, else 0."),
            _std("ADT", "Analysis Date", "date", "Date part of ADTM."),
            _std(
                "ADTM",
                "Analysis Datetime",
                "datetime",
                "observations.time / biomarkers.time.",
                origin="Predecessor",
            ),
            _std("ADY", "Analysis Relative Day", "integer", _ADY_TEXT),
            _ext("APRDY", "Protocol Study Day", "integer", _APRDY_TEXT),
            _std(
                "AVAL",
                "Analysis Value",
                "float",
                "Value in the canonical unit (converted once at ingestion, core.concepts).",
                origin="Predecessor",
            ),
            _ext(
                "AVALU",
                "Analysis Value Unit",
                "text",
                "Canonical unit of the parameter (also in PARAM).",
                origin="Predecessor",
            ),
            _std(
                "ABLFL",
                "Baseline Record Flag",
                "text",
                "FERRITIN / HLADR: Y on the first sample of the subject (the screening sample the phenotype uses).",
                **yflag,
            ),
            _std(
                "ANL01FL",
                "Analysis Flag 01",
                "text",
                "Y on the SOFA inputs (PAO2, FIO2, PLAT, BILI, CREAT, MAP, GCS, UOUT) of protocol "
                f"days 1-{rules.max_study_day}, the window whose worst daily value the daily SOFA "
                "scores (core.derive; a FiO2 up to 4 h before a PaO2 may also be matched).",
                **yflag,
            ),
        ),
        "Labs, vital signs and the immune biomarkers as received (canonical units). A blinded "
        "export (without the arm) has no ferritin or HLA-DR after the first sample "
        "(core.policy.may_see_post_baseline_biomarkers).",
    )
    return (adsl, adsofa, adrs, adtte, adae, adlb)


def datasets(
    rules: SofaRules = SofaRules(), endpoint: EndpointRules = EndpointRules()
) -> Mapping[str, Dataset]:
    """Name -> :class:`Dataset` of every ADaM dataset under these rules (read-only)."""
    return MappingProxyType({d.name: d for d in _datasets(rules, endpoint)})


def codelists(endpoint: EndpointRules = EndpointRules()) -> Mapping[str, Codelist]:
    """OID -> :class:`Codelist` of every codelist the variables refer to (read-only)."""
    arms = tuple(Arm)
    items = [
        Codelist("CL.NY", "No Yes Response", "text", (("N", "No"), ("Y", "Yes")), cdisc="C66742"),
        Codelist("CL.Y", "Yes Response", "text", (("Y", "Yes"),), cdisc="C66742"),
        Codelist("CL.SEX", "Sex", "text", (("F", "Female"), ("M", "Male")), cdisc="C66731"),
        Codelist("CL.AGEU", "Age Unit", "text", (("YEARS", "Years"),), cdisc="C66781"),
        Codelist("CL.RACE", "Race", "text", (("NOT REPORTED", "Not reported"),), cdisc="C74457"),
        Codelist(
            "CL.COUNTRY",
            "Country",
            "text",
            tuple((iso, name) for name, iso in sorted(COUNTRY_ISO3.items())),
            cdisc="ISO 3166-1 alpha-3",
        ),
        Codelist(
            "CL.ARMCD",
            "Planned Arm Code",
            "text",
            tuple((ARM_CODES[a], ARM_LABELS[a]) for a in arms),
        ),
        Codelist(
            "CL.ARM", "Planned Arm", "text", tuple((ARM_LABELS[a], ARM_LABELS[a]) for a in arms)
        ),
        Codelist(
            "CL.ARMN",
            "Planned Arm (N)",
            "integer",
            tuple((str(ARM_NUMBERS[a]), ARM_LABELS[a]) for a in arms),
        ),
        Codelist(
            "CL.DTYPE",
            "Derivation Type",
            "text",
            tuple((k, v) for k, v in DTYPE_TERMS.items()),
            cdisc="C81224",
        ),
        Codelist(
            "CL.AESEV",
            "Severity/Intensity Scale for Adverse Events",
            "text",
            (("SEVERE", "Severe"),),
            cdisc="C66769",
        ),
        Codelist(
            "CL.ASEV",
            "Analysis Severity",
            "text",
            (("SEVERE", "Severe"), ("NOT SEVERE", "Not severe (mild or moderate)")),
            extended=frozenset({"NOT SEVERE"}),
            cdisc="C66769",
        ),
        Codelist(
            "CL.AESI",
            "Adverse Event of Special Interest",
            "text",
            (("ANEMIA", "Anemia (anakinra)"), ("HEMORRHAGE", "Hemorrhage (interferon-gamma)")),
        ),
        Codelist(
            "CL.PHENO",
            "Immune Phenotype",
            "text",
            (
                ("MALS", "Macrophage activation-like syndrome"),
                ("SIP", "Sepsis-induced immunoparalysis"),
                ("not_eligible", "Neither MALS nor SIP"),
                ("pending_hla_dr", "HLA-DR pending"),
                ("unknown", "Unknown"),
            ),
        ),
        Codelist("CL.CNSR", "Censor", "integer", (("0", "Event"), ("1", "Censored"))),
        Codelist(
            "CL.EVNTDESC",
            "Event or Censoring Description",
            "text",
            (
                ("DEATH", "Death"),
                *((f"ALIVE AT END OF DAY {h}", f"Alive at day {h}") for h in (28, 90)),
            ),
        ),
        Codelist(
            "CL.CNSDTDSC",
            "Censor Date Description",
            "text",
            tuple((f"END OF PROTOCOL DAY {h}", f"End of protocol study day {h}") for h in (28, 90)),
        ),
    ]
    params = {
        "ADSOFA": dict(ADSOFA_PARAMS),
        "ADRS": adrs_params(endpoint),
        "ADTTE": dict(ADTTE_PARAMS),
        "ADLB": dict(ADLB_PARAMS),
    }
    for ds, p in params.items():
        items.append(
            Codelist(
                f"CL.PARAMCD.{ds}",
                f"{ds} Parameter Code",
                "text",
                tuple((k, v[0]) for k, v in p.items()),
            )
        )
        items.append(
            Codelist(
                f"CL.PARAM.{ds}", f"{ds} Parameter", "text", tuple((v[0], v[0]) for v in p.values())
            )
        )
    return MappingProxyType({c.oid: c for c in items})
