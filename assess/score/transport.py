"""Files for Stata and SAS, and for a sponsor's submission: ``ratings.dta``, ``qs.xpt`` and
``define.xml``.

* ``ratings.dta`` (Stata 15, ``pyreadstat``): the per-participant table of ``ratings.sav`` with
  value labels; a missing rating is a Stata extended missing value saying why (:data:`STATA_MISSING`),
  names shortened to Stata's 32 characters (the label keeps the full meaning).
* ``qs.xpt`` (SAS transport version 5, ``pyreadstat.write_xport``): every rating as an SDTM-style
  questionnaire (QS) record, one row per rating, the blinded rater as the evaluator.
* ``define.xml`` (Define-XML 2.0 shape, built with :mod:`xml.etree.ElementTree`): the dataset, its
  variables and the test codes.

What a sponsor still maps (controlled terminology, the visit date of each photo, the QS test
codes of their questionnaire supplement) is listed in ``docs/analysis.md``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from .. import levels
from ..study import Scale
from .export import NOT_PHOTOGRAPHED, NOT_RATED, Wide, missing_codes, missing_labels

__all__ = ["STATA_MISSING", "QS_VARIABLES", "stata_name", "write_dta", "qs_table", "qs_tests",
           "write_xpt", "xpt_job", "define_xml"]

#: Stata extended missing value of each reason a rating is missing.
STATA_MISSING = {"out_of_focus": "a", "framing": "b", "lighting": "c",
                 "identifying_feature": "d", "other": "e", NOT_RATED: "r", NOT_PHOTOGRAPHED: "p"}

_SHORT = (("improvement", "impr"), ("change", "chg"), ("baseline", "bl"))

#: Longest Stata name pyreadstat writes with value labels (their label set takes the name too).
STATA_NAME_MAX = 30


def stata_name(name: str, taken: set[str]) -> str:
    """A Stata variable name (at most :data:`STATA_NAME_MAX` characters), unique among ``taken``;
    long names lose words, then their middle, and keep their end (timepoint, rater).

    >>> stata_name("face_wsrs_improvement_month12", set())
    'face_wsrs_improvement_month12'
    >>> stata_name("hands_left_merz_hand_improvement_month12_derm1", set())
    'hands_left_merz_impr_m12_derm1'
    """
    short = name
    for word, abbrev in _SHORT + (("month", "m"), ("_hand", "")):
        if len(short) > STATA_NAME_MAX:
            short = short.replace(word, abbrev)
    if len(short) > STATA_NAME_MAX:
        short = short[:14] + "_" + short[-(STATA_NAME_MAX - 15):]
    candidate, n = short, 1
    lower = {t.lower() for t in taken}
    while candidate.lower() in lower:
        n += 1
        candidate = short[:STATA_NAME_MAX - len(str(n)) - 1] + f"_{n}"
    return candidate


def write_dta(wide: Wide, scales: dict[str, Scale], path: str | Path, file_label: str = "") -> None:
    """Write the per-participant table as a Stata 15 file with value labels and extended missing
    values (.a–.e cannot assess by reason, .r not rated, .p not photographed)."""
    import pyreadstat

    codes = missing_codes(scales)
    letter_of = {float(code): STATA_MISSING[reason] for reason, code in codes.items()}
    missing_text = missing_labels(codes)
    taken: set[str] = set()
    names = {}
    for col in wide.frame.columns:
        names[col] = stata_name(col, taken)
        taken.add(names[col])
    frame = pd.DataFrame({names[c]: wide.frame[c] for c in wide.frame.columns})
    value_labels, user_missing = {}, {}
    for col in wide.frame.columns:
        if col not in wide.missing_ranges:
            if wide.value_labels.get(col):
                value_labels[names[col]] = {int(k): v for k, v in wide.value_labels[col].items()
                                            if float(k).is_integer()}
            continue
        values = wide.frame[col].to_numpy(dtype="float64")
        cells = np.array([letter_of.get(v, v) for v in values.tolist()], dtype=object)
        frame[names[col]] = pd.Series(cells, dtype=object)
        # Stata labels whole numbers only: a half step (1.5) keeps its value, unlabelled.
        labels = {int(k): v for k, v in wide.value_labels[col].items()
                  if k not in letter_of and float(k).is_integer()}
        labels.update({letter_of[k]: missing_text[k] for k in letter_of})
        value_labels[names[col]] = labels
        user_missing[names[col]] = sorted(set(STATA_MISSING.values()))
    pyreadstat.write_dta(frame, str(path), file_label=file_label[:80],
                         column_labels=[wide.labels.get(c, c)[:80] for c in wide.frame.columns],
                         variable_value_labels=value_labels, missing_user_values=user_missing)


# --------------------------------------------------------------------------------- SDTM QS

#: The QS dataset's variables: name -> (label, SAS type).
QS_VARIABLES = {
    "STUDYID": ("Study Identifier", "text"),
    "DOMAIN": ("Domain Abbreviation", "text"),
    "USUBJID": ("Unique Subject Identifier", "text"),
    "QSSEQ": ("Sequence Number", "integer"),
    "QSSPID": ("Sponsor-Defined Identifier", "text"),
    "QSTESTCD": ("Question Short Name", "text"),
    "QSTEST": ("Question Name", "text"),
    "QSCAT": ("Category of Question", "text"),
    "QSORRES": ("Finding in Original Units", "text"),
    "QSSTRESC": ("Character Result/Finding in Std Format", "text"),
    "QSSTRESN": ("Numeric Result/Finding in Standard Units", "float"),
    "QSSTAT": ("Completion Status", "text"),
    "QSREASND": ("Reason Not Done", "text"),
    "QSLOC": ("Location Used for the Measurement", "text"),
    "QSLAT": ("Laterality", "text"),
    "QSREPNUM": ("Repetition Number", "integer"),
    "QSEVAL": ("Evaluator", "text"),
    "QSEVALID": ("Evaluator Identifier", "text"),
    "VISITNUM": ("Visit Number", "float"),
    "VISIT": ("Visit Name", "text"),
    "QSDTC": ("Date/Time of Finding", "text"),
}

_REASND = {"out_of_focus": "OUT OF FOCUS", "framing": "WRONG REGION OR FRAMING",
           "lighting": "LIGHTING", "identifying_feature": "IDENTIFYING FEATURE VISIBLE",
           "other": "OTHER"}
_PAIR_WORDS = {-2: "MUCH BETTER BASELINE", -1: "BETTER BASELINE", 0: "NO DIFFERENCE",
               1: "BETTER FOLLOW-UP", 2: "MUCH BETTER FOLLOW-UP"}


def qs_tests(long: pd.DataFrame, scales: dict[str, Scale]) -> pd.DataFrame:
    """One QS test per kind × region × view × scale: ``QSTESTCD`` (at most 8 characters, letters
    and digits, starting with a letter), ``QSTEST`` (at most 40), ``QSCAT`` (the scale's name).

    >>> from assess.study import shipped_scales
    >>> long = pd.DataFrame({"kind": ["single", "single"], "region": ["face", "hands"],
    ...                      "view": ["", "left"], "scale": ["wsrs", "merz-hand"]})
    >>> qs_tests(long, shipped_scales())["QSTESTCD"].tolist()
    ['WSRSFACE', 'MERZHANL']
    """
    units = long[["kind", "region", "view", "scale"]].drop_duplicates().sort_values(
        ["kind", "region", "view", "scale"])
    rows, taken = [], set()
    for kind, region, view, scale_id in units.itertuples(index=False):
        clean = lambda s: re.sub(r"[^A-Z0-9]", "", str(s).upper())  # noqa: E731
        stem = clean(scale_id)[:4] + clean(region)[: (4 if not view else 3)] + clean(view)[:1]
        stem = ("I" + stem[:7]) if kind == "pair" else stem
        if not stem[:1].isalpha():
            stem = ("Q" + stem)[:8]
        code, n = stem[:8], 1
        while code in taken:
            n += 1
            code = stem[:8 - len(str(n))] + str(n)
        taken.add(code)
        where = region + (f" {view}" if view else "")
        name = scales[scale_id].name
        test = f"{'Improvement, ' if kind == 'pair' else ''}{name}, {where}"
        rows.append({"kind": kind, "region": region, "view": view, "scale": scale_id,
                     "QSTESTCD": code, "QSTEST": test[:40], "QSCAT": name[:40].upper()})
    return pd.DataFrame(rows)


def qs_table(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
             study_id: str) -> pd.DataFrame:
    """Every rating as a QS record (first showings ``QSREPNUM`` 1, disguised repeats 2)."""
    tests = qs_tests(long, scales)
    data = long.merge(tests, on=["kind", "region", "view", "scale"], how="left")
    single = (data["kind"] == "single").to_numpy()
    value = np.where(single, data["score"].astype("float64").to_numpy(na_value=np.nan),
                     data["improvement"].astype("float64").to_numpy(na_value=np.nan))
    ca = data["cannot_assess"].to_numpy(dtype=bool)
    value = np.where(ca, np.nan, value)
    # Each distinct (kind, scale, value) is put in words once.
    keys = pd.DataFrame({"kind": data["kind"].astype(str), "scale": data["scale"].astype(str),
                         "v": value})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(keys.fillna({"v": -9999.0})))
    text = []
    for kind, scale_id, v in uniques.tolist():
        if v == -9999.0:
            text.append(("", ""))
        elif kind == "pair":
            text.append((_PAIR_WORDS[int(v)], str(int(v))))
        elif scales[scale_id].continuous:  # a VAS: the value itself
            text.append((levels.text(v), levels.text(v)))
        else:
            text.append((scales[scale_id].level(levels.canonical(v)).label.upper(), levels.text(v)))
    words = np.array([t[0] for t in text], dtype=object)[codes]
    stresc = np.array([t[1] for t in text], dtype=object)[codes]
    reason = data["reason"].astype(object).map(lambda r: _REASND.get(r, "OTHER"))
    usubjid = study_id + "-" + data["participant"].astype(str)
    out = pd.DataFrame({
        "STUDYID": study_id, "DOMAIN": "QS", "USUBJID": usubjid.to_numpy(),
        "QSSEQ": 0.0, "QSSPID": data["code"].astype(str).to_numpy(),
        "QSTESTCD": data["QSTESTCD"].to_numpy(), "QSTEST": data["QSTEST"].to_numpy(),
        "QSCAT": data["QSCAT"].to_numpy(), "QSORRES": words,
        "QSSTRESC": stresc,
        "QSSTRESN": value,
        "QSSTAT": np.where(ca, "NOT DONE", ""),
        "QSREASND": np.where(ca, reason.to_numpy(dtype=object), ""),
        "QSLOC": data["region"].astype(str).str.upper().to_numpy(),
        "QSLAT": [v.upper() if v in ("left", "right") else "" for v in data["view"]],
        "QSREPNUM": np.where(data["repeat"].to_numpy(dtype=bool), 2.0, 1.0),
        "QSEVAL": "INDEPENDENT ASSESSOR", "QSEVALID": data["rater"].astype(str).to_numpy(),
        "VISITNUM": data["timepoint"].map({t: float(i + 1) for i, t in enumerate(timepoints)})
        .to_numpy(dtype="float64"),
        "VISIT": data["timepoint"].astype(str).str.upper().to_numpy(),
        "QSDTC": data["answered_at"].fillna("").astype(str).str[:19].to_numpy(),
    })
    out = out.sort_values(["USUBJID", "VISITNUM", "QSTESTCD", "QSEVALID", "QSREPNUM"],
                          kind="stable").reset_index(drop=True)
    out["QSSEQ"] = (out.groupby("USUBJID").cumcount() + 1).astype("float64")
    return out[list(QS_VARIABLES)]


def xpt_job(qs: pd.DataFrame, path: str | Path) -> tuple:
    """``(pyreadstat function, frame, path, keyword arguments)`` writing ``qs`` as SAS transport
    version 5 (names ≤ 8, labels ≤ 40); :func:`assess.score.export.run_job` runs it."""
    # Plain object columns: pyreadstat writes them about three times faster than pandas' str.
    frame = qs.astype({c: object for c in qs.columns if qs[c].dtype != "float64"})
    return ("write_xport", frame, str(path),
            {"file_label": "Questionnaires", "table_name": "QS", "file_format_version": 5,
             "column_labels": [QS_VARIABLES[c][0][:40] for c in qs.columns]})


def write_xpt(qs: pd.DataFrame, path: str | Path) -> None:
    """Write the QS dataset as a SAS transport file, version 5."""
    from .export import run_job

    run_job(xpt_job(qs, path))


ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.0"
XLINK = "http://www.w3.org/1999/xlink"


def define_xml(qs: pd.DataFrame, study_id: str, title: str, created: str) -> bytes:
    """A Define-XML 2.0 document describing ``qs.xpt``: the QS item group, one ItemDef per
    variable (type, length, label) and the code list of QSTESTCD."""
    ET.register_namespace("", ODM)
    ET.register_namespace("def", DEF)
    ET.register_namespace("xlink", XLINK)
    q = lambda ns, tag: f"{{{ns}}}{tag}"  # noqa: E731
    root = ET.Element(q(ODM, "ODM"), {"FileType": "Snapshot", "FileOID": f"DEFINE.{study_id}.QS",
                                      "ODMVersion": "1.3.2", "CreationDateTime": created,
                                      "Originator": "assess", q(DEF, "Context"): "Submission"})
    study = ET.SubElement(root, q(ODM, "Study"), {"OID": f"STUDY.{study_id}"})
    gv = ET.SubElement(study, q(ODM, "GlobalVariables"))
    ET.SubElement(gv, q(ODM, "StudyName")).text = study_id
    ET.SubElement(gv, q(ODM, "StudyDescription")).text = title or study_id
    ET.SubElement(gv, q(ODM, "ProtocolName")).text = study_id
    mdv = ET.SubElement(study, q(ODM, "MetaDataVersion"), {
        "OID": "MDV.1", "Name": f"{study_id} blinded photo assessment",
        q(DEF, "DefineVersion"): "2.0.0", q(DEF, "StandardName"): "SDTM-IG",
        q(DEF, "StandardVersion"): "3.3"})

    def described(parent, text):
        d = ET.SubElement(parent, q(ODM, "Description"))
        ET.SubElement(d, q(ODM, "TranslatedText"), {"xml:lang": "en"}).text = text

    group = ET.SubElement(mdv, q(ODM, "ItemGroupDef"), {
        "OID": "IG.QS", "Name": "QS", "Repeating": "Yes", "SASDatasetName": "QS", "Domain": "QS",
        "Purpose": "Tabulation", q(DEF, "Structure"):
            "One record per rating per subject per visit per evaluator per repetition",
        q(DEF, "Class"): "FINDINGS", q(DEF, "ArchiveLocationID"): "LF.QS"})
    described(group, "Questionnaires: blinded photo assessment")
    for order, name in enumerate(qs.columns, start=1):
        ET.SubElement(group, q(ODM, "ItemRef"), {
            "ItemOID": f"IT.QS.{name}", "OrderNumber": str(order),
            "Mandatory": "Yes" if name in ("STUDYID", "DOMAIN", "USUBJID", "QSSEQ", "QSTESTCD",
                                           "QSTEST") else "No"})
    leaf = ET.SubElement(group, q(DEF, "leaf"), {"ID": "LF.QS", q(XLINK, "href"): "qs.xpt"})
    ET.SubElement(leaf, q(DEF, "title")).text = "qs.xpt"
    for name in qs.columns:
        label, kind = QS_VARIABLES[name]
        if kind == "text":
            length = max(int(qs[name].astype(str).str.len().max() or 1), 1)
        else:
            length = 8
        item = ET.SubElement(mdv, q(ODM, "ItemDef"), {
            "OID": f"IT.QS.{name}", "Name": name, "SASFieldName": name, "DataType": kind,
            "Length": str(length)})
        described(item, label)
        if name == "QSTESTCD":
            ET.SubElement(item, q(ODM, "CodeListRef"), {"CodeListOID": "CL.QSTESTCD"})
    codes = ET.SubElement(mdv, q(ODM, "CodeList"), {"OID": "CL.QSTESTCD", "Name": "QS Test Code",
                                                     "DataType": "text"})
    for code, test in qs[["QSTESTCD", "QSTEST"]].drop_duplicates().itertuples(index=False):
        cli = ET.SubElement(codes, q(ODM, "CodeListItem"), {"CodedValue": code})
        d = ET.SubElement(cli, q(ODM, "Decode"))
        ET.SubElement(d, q(ODM, "TranslatedText"), {"xml:lang": "en"}).text = test
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)
