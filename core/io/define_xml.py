"""define.xml 2.1 for the ADaM export: every dataset, variable, codelist and derivation.

Written with the standard library's ElementTree (CDISC Define-XML 2.1 on ODM 1.3.2): one
``ItemGroupDef`` per dataset (class, structure, keys, the file as ``def:leaf``), one ``ItemDef``
per variable (data type, length, SAS display format of numeric dates, label, codelist, origin),
one ``MethodDef`` per derived variable (its derivation: the SOFA cut-offs and rules, the
endpoint, the imputation, the survival definition, the study-day rules), the ``CodeList`` s
(sponsor extensions of CDISC terminology marked ``def:ExtendedValue="Yes"``) and one
``def:CommentDef`` per dataset (its description, blinding included). The metadata are
:mod:`core.io.adam_spec`; lengths come from the data written.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import pandas as pd

from core.io.adam import STUDYID
from core.io.adam_spec import SAS_FORMATS, Codelist, Dataset, codelists
from core.io.dataset_json import METADATA_VERSION_OID, text_length
from core.rules import EndpointRules

ODM_NS: Final = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS: Final = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS: Final = "http://www.w3.org/1999/xlink"
XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"
_DEFINE_TYPES: Final = {
    "text": "text",
    "integer": "integer",
    "float": "float",
    # ADaM numeric dates: integer SAS values with a date display format
    "date": "integer",
    "datetime": "integer",
}

ET.register_namespace("", ODM_NS)
ET.register_namespace("def", DEF_NS)
ET.register_namespace("xlink", XLINK_NS)


def _o(tag: str) -> str:
    return f"{{{ODM_NS}}}{tag}"


def _d(tag: str) -> str:
    return f"{{{DEF_NS}}}{tag}"


def _description(parent: ET.Element, text: str, tag: str = "Description") -> None:
    desc = ET.SubElement(parent, _o(tag))
    tt = ET.SubElement(desc, _o("TranslatedText"))
    tt.set(XML_LANG, "en")
    tt.text = text


def _length(values: pd.Series, kind: str) -> tuple[int, int | None]:
    """(Length, SignificantDigits) of a variable from its values."""
    if kind == "text":
        return text_length(values), None
    if kind in ("date", "datetime"):
        return 8, None
    v = pd.to_numeric(values).dropna()
    if kind == "integer":
        return max(
            1, int(v.abs().astype("int64").astype(str).str.len().max()) if len(v) else 1
        ), None
    digits = v.map(
        lambda x: len(repr(float(x)).split(".")[1].rstrip("0")) if "." in repr(float(x)) else 0
    )
    sig = int(digits.max()) if len(v) else 0
    whole = int(v.abs().astype("int64").astype(str).str.len().max()) if len(v) else 1
    return max(1, whole + sig + 1), max(sig, 0)


def _codelist(mdv: ET.Element, cl: Codelist) -> None:
    el = ET.SubElement(
        mdv, _o("CodeList"), OID=cl.oid, Name=cl.name, DataType=_DEFINE_TYPES[cl.kind]
    )
    for value, decode in cl.items:
        item = ET.SubElement(el, _o("CodeListItem"), CodedValue=value)
        if value in cl.extended:
            item.set(_d("ExtendedValue"), "Yes")
        _description(item, decode, "Decode")
    if cl.cdisc:
        context = "nci:ExtCodeID" if cl.cdisc.startswith("C") else "standard"
        ET.SubElement(el, _o("Alias"), Context=context, Name=cl.cdisc)


def define_tree(
    frames: Mapping[str, pd.DataFrame],
    spec: Mapping[str, Dataset],
    *,
    files: Mapping[str, str],
    endpoint_rules: EndpointRules = EndpointRules(),
    blinded: bool,
    created: datetime | None = None,
) -> ET.ElementTree:
    """The define.xml 2.1 document of the exported ``frames`` (variables as written)."""
    created = created or datetime.now(UTC)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element(
        _o("ODM"),
        {
            "FileType": "Snapshot",
            "FileOID": f"{STUDYID}.ADAM.DEFINE",
            "CreationDateTime": stamp,
            "ODMVersion": "1.3.2",
            "Originator": "ImmunoSep Dashboard",
            "SourceSystem": "immunosep-dashboard",
            "SourceSystemVersion": "0.1.0",
            _d("Context"): "Other",
        },
    )
    study = ET.SubElement(root, _o("Study"), OID=STUDYID)
    gv = ET.SubElement(study, _o("GlobalVariables"))
    ET.SubElement(gv, _o("StudyName")).text = STUDYID
    ET.SubElement(gv, _o("StudyDescription")).text = (
        "ImmunoSep: personalised immunotherapy in sepsis (anakinra for MALS, interferon-gamma "
        "for SIP) vs placebo"
    )
    ET.SubElement(gv, _o("ProtocolName")).text = STUDYID
    blinding = (
        "Blinded export: no treatment variable, no post-baseline ferritin / HLA-DR, no AESI "
        "flag nor AESI preferred-term records (core.policy guards, docs/blinding.md 6.4)."
        if blinded
        else "Unblinded export: treatment variables, all biomarker samples and AESI flags."
    )
    mdv = ET.SubElement(
        study,
        _o("MetaDataVersion"),
        {
            "OID": METADATA_VERSION_OID,
            "Name": f"{STUDYID} ADaM",
            "Description": f"ADaM datasets of the ImmunoSep Dashboard. {blinding}",
            _d("DefineVersion"): "2.1.0",
        },
    )
    standards = ET.SubElement(mdv, _d("Standards"))
    ET.SubElement(
        standards,
        _d("Standard"),
        OID="STD.ADAMIG",
        Name="ADaMIG",
        Type="IG",
        Version="1.3",
        Status="Final",
    )
    ET.SubElement(
        standards,
        _d("Standard"),
        OID="STD.CT.ADAM",
        Name="CDISC/NCI",
        Type="CT",
        PublishingSet="ADaM",
        Version="2024-03-29",
        Status="Final",
    )
    methods: list[tuple[str, str, str]] = []
    for name, frame in frames.items():
        ds = spec[name]
        ig = ET.SubElement(
            mdv,
            _o("ItemGroupDef"),
            {
                "OID": f"IG.{name}",
                "Name": name,
                "SASDatasetName": name,
                "Repeating": "No" if name == "ADSL" else "Yes",
                "IsReferenceData": "No",
                "Purpose": "Analysis",
                _d("Structure"): ds.structure,
                _d("StandardOID"): "STD.ADAMIG",
                _d("ArchiveLocationID"): f"LF.{name}",
                _d("CommentOID"): f"COM.{name}",
            },
        )
        _description(ig, ds.label)
        for order, var_name in enumerate(frame.columns, start=1):
            var = ds.var(var_name)
            ref = {
                "ItemOID": f"IT.{name}.{var_name}",
                "Mandatory": "Yes" if var_name in ds.keys else "No",
                "OrderNumber": str(order),
            }
            if var_name in ds.keys:
                ref["KeySequence"] = str(ds.keys.index(var_name) + 1)
            if var.origin == "Derived":
                ref["MethodOID"] = f"MT.{name}.{var_name}"
                methods.append(
                    (
                        f"MT.{name}.{var_name}",
                        f"Algorithm to derive {name}.{var_name}",
                        var.derivation or var.label,
                    )
                )
            ET.SubElement(ig, _o("ItemRef"), ref)
        ET.SubElement(ig, _d("Class"), Name=ds.klass)
        leaf = ET.SubElement(
            ig, _d("leaf"), {"ID": f"LF.{name}", f"{{{XLINK_NS}}}href": files[name]}
        )
        ET.SubElement(leaf, _d("title")).text = files[name]
    used_codelists: set[str] = set()
    for name, frame in frames.items():
        ds = spec[name]
        for var_name in frame.columns:
            var = ds.var(var_name)
            length, digits = _length(frame[var_name], var.kind)
            attrs = {
                "OID": f"IT.{name}.{var_name}",
                "Name": var_name,
                "SASFieldName": var_name,
                "DataType": _DEFINE_TYPES[var.kind],
                "Length": str(length),
            }
            if digits is not None:
                attrs["SignificantDigits"] = str(digits)
            if var.kind in SAS_FORMATS:
                attrs[_d("DisplayFormat")] = SAS_FORMATS[var.kind]
            if not var.standard:
                attrs[_d("CommentOID")] = "COM.EXTENSION"
            item = ET.SubElement(mdv, _o("ItemDef"), attrs)
            _description(item, var.label)
            if var.codelist:
                ET.SubElement(item, _o("CodeListRef"), CodeListOID=var.codelist)
                used_codelists.add(var.codelist)
            origin = ET.SubElement(item, _d("Origin"), Type=var.origin)
            if var.origin != "Derived":
                _description(origin, var.derivation or var.label)
    for cl in codelists(endpoint_rules).values():
        if cl.oid in used_codelists:
            _codelist(mdv, cl)
    for oid, mname, text in methods:
        m = ET.SubElement(mdv, _o("MethodDef"), OID=oid, Name=mname, Type="Computation")
        _description(m, text)
    for name in frames:
        c = ET.SubElement(mdv, _d("CommentDef"), OID=f"COM.{name}")
        _description(c, spec[name].description or spec[name].label)
    c = ET.SubElement(mdv, _d("CommentDef"), OID="COM.EXTENSION")
    _description(
        c,
        "Sponsor-defined variable (not in the ADaM IG), documented in docs/adam.md of the "
        "ImmunoSep Dashboard.",
    )
    ET.indent(root)
    return ET.ElementTree(root)


def write_define(
    frames: Mapping[str, pd.DataFrame],
    spec: Mapping[str, Dataset],
    path: str | Path,
    *,
    files: Mapping[str, str],
    endpoint_rules: EndpointRules = EndpointRules(),
    blinded: bool,
) -> Path:
    """Write define.xml 2.1 (UTF-8, XML declaration) for the exported ``frames``."""
    path = Path(path)
    tree = define_tree(frames, spec, files=files, endpoint_rules=endpoint_rules, blinded=blinded)
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path
