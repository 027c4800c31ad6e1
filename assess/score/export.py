"""Files for the statistician: CSV, Excel (XLSX) and SPSS (SAV).

* CSV: UTF-8 with a byte-order mark (Excel opens it with the right accents), comma separated.
* XLSX: one sheet per table, header row bold and frozen, autofilter. The workbook is made by
  ``xlsxwriter``; the data rows of each sheet are written as inline cells in one pass (the
  worksheet XML of ECMA-376 §18.3.1), because writing 100,000 rows through ``xlsxwriter``'s
  cell-by-cell API takes ~20 s on a modest machine and the long table of a trial reaches that size.
* SAV: ``pyreadstat``; one row per participant, one numeric variable per region × scale × timepoint
  (× rater when several), with variable labels and value labels from the scale's levels.

Text cells that begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return are prefixed with
``'`` in CSV and XLSX so that a spreadsheet never runs them as a formula (CWE-1236;
:func:`assess.csvfile.spreadsheet_safe`, as in the key folder's files); numbers, negative changes
included, stay numbers.
"""

from __future__ import annotations

import re
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xlsxwriter
import xlsxwriter.format
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from ..csvfile import spreadsheet_safe
from ..study import Scale

__all__ = ["neutralize", "write_csv", "write_xlsx", "spss_name", "wide_table", "write_sav",
           "missing_codes", "Wide", "long_table", "write_long_sav", "long_sav_job", "run_job"]

XML_ILLEGAL_BUT_NUL = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
MAX_CELL = 32767
SPSS_RESERVED = {"ALL", "AND", "BY", "EQ", "GE", "GT", "LE", "LT", "NE", "NOT", "OR", "TO", "WITH"}


def _text_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if df[c].dtype == object or pd.api.types.is_string_dtype(df[c])]


def neutralize(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix ``'`` to text cells a spreadsheet would read as a formula; numbers are left alone.

    >>> df = pd.DataFrame({"comment": ["=HYPERLINK(1)", "-fine", "ok", None], "change": [-1, 0, 2, 1]})
    >>> neutralize(df)["comment"].tolist()[:3], neutralize(df)["change"].tolist()
    (["'=HYPERLINK(1)", "'-fine", 'ok'], [-1, 0, 2, 1])
    """
    out = df.copy()
    for col in _text_columns(out):
        values = out[col]
        uniques, codes = _factorize(values)
        fixed = [spreadsheet_safe(v) if isinstance(v, str) else v for v in uniques]
        if fixed != list(uniques):
            mapped = np.asarray(fixed, dtype=object)[codes]
            mapped[codes < 0] = None
            out[col] = mapped
    return out


def _factorize(values: pd.Series):
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return uniques.tolist(), codes


def _export_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Booleans as 0/1, nullable integers kept, text neutralized."""
    out = df.copy()
    for col in out.columns:
        dtype = out[col].dtype
        if dtype == bool:
            out[col] = out[col].astype("int64")
        elif str(dtype) == "boolean":
            out[col] = out[col].astype("Int64")
    return neutralize(out)


def _unique_render(series: pd.Series, number, text, blank: str) -> np.ndarray:
    """Render each distinct value once (``number(float)`` or ``text(str)``), then spread them."""
    if series.dtype == bool:
        series = series.astype("int64")
    elif str(series.dtype) == "boolean":
        series = series.astype("Int64")
    if pd.api.types.is_numeric_dtype(series.dtype):
        arr = series.astype("float64").to_numpy()
        arr = np.where(np.isfinite(arr), arr, np.nan)
        codes, uniques = pd.factorize(arr, use_na_sentinel=True)
        rendered = [number(u) for u in uniques.tolist()]
    else:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        rendered = text([str(u) for u in uniques.tolist()])
    return np.array(rendered + [blank], dtype=object)[codes]


def _number_text(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


CHUNK = 10_000  # rows rendered at a time: the memory of a file's text stays small


def _join_rows(parts: list, n: int) -> str:
    """Row-major text of ``parts`` (each a constant string or one string per row)."""
    block = np.empty((n, len(parts)), dtype=object)
    for j, part in enumerate(parts):
        block[:, j] = part
    return "".join(block.ravel().tolist())


def _chunks(df: pd.DataFrame) -> Iterable[tuple[int, pd.DataFrame]]:
    """``(first row, export frame)`` of each block of :data:`CHUNK` rows."""
    for start in range(0, len(df), CHUNK):
        yield start, _export_frame(df.iloc[start:start + CHUNK])


CSV_SPECIAL = re.compile(r'[",\r\n]')


def _csv_text(values: list[str]) -> list[str]:
    return ['"' + v.replace('"', '""') + '"' if CSV_SPECIAL.search(v) else v for v in values]


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    r'''Write a table as UTF-8 CSV (with BOM, RFC 4180 quoting), formula-like text neutralized.

    Each distinct value is rendered once and the rows are assembled in one pass (pandas'
    ``to_csv`` formats every cell and takes seconds for a trial's long table).

    >>> import io, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> write_csv(pd.DataFrame({"a": ["x, y", 'say "hi"', None], "b": [1.0, -2.5, None]}), path)
    >>> path.read_text(encoding="utf-8-sig").splitlines()
    ['a,b', '"x, y",1', '"say ""hi""",-2.5', ',']
    '''
    header = ",".join(_csv_text([str(c) for c in df.columns])) + "\n"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        fh.write(header)
        for _, frame in _chunks(df) if len(df.columns) else ():
            parts: list = []
            for i, col in enumerate(frame.columns):
                parts += [_unique_render(frame[col], _number_text, _csv_text, ""),
                          "," if i < len(frame.columns) - 1 else "\n"]
            fh.write(_join_rows(parts, len(frame)))


# --------------------------------------------------------------------------------- XLSX


def _xml_texts(values: list[str]) -> list[str]:
    """XML-escaped text of many values at once (one pass over all of them)."""
    if not values:
        return []
    sep = "\x00"  # illegal in XML, so removed from every value and a safe separator
    joined = sep.join(v.replace(sep, "")[:MAX_CELL] for v in values)
    joined = XML_ILLEGAL_BUT_NUL.sub("", joined)
    joined = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return joined.split(sep)


def _xlsx_text(values: list[str]) -> list[str]:
    out = []
    for text in _xml_texts(values):
        if text == "":
            out.append('"/>')
        elif text[0].isspace() or text[-1].isspace():
            out.append(f'" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>')
        else:
            out.append(f'" t="inlineStr"><is><t>{text}</t></is></c>')
    return out


def _rows_xml(df: pd.DataFrame, first_row: int = 2, styles: list[int | None] | None = None
              ) -> Iterable[str]:
    """Worksheet ``<row>`` elements of a frame's values, starting at Excel row ``first_row``,
    one block of rows at a time; ``styles`` gives each column's cell format index (or None)."""
    names = [xl_col_to_name(i) for i in range(len(df.columns))]
    styles = styles or [None] * len(names)
    for start, frame in _chunks(df):
        rows = np.arange(first_row + start, first_row + start + len(frame)).astype(str).astype(object)
        parts: list = ['<row r="', rows, '">']
        for name, col, style in zip(names, frame.columns, styles):
            rest = _unique_render(frame[col], lambda v: f'"><v>{_number_text(v)}</v></c>',
                                  _xlsx_text, '"/>')
            parts += [f'<c r="{name}', rows, f'" s="{style}' if style else "", rest]
        parts.append("</row>")
        yield _join_rows(parts, len(frame))


#: Columns shown with four decimals (p-values); other fractional numbers get three.
P_COLUMNS = {"p", "p_exact", "icc_p", "binomial_p"}
PERCENT_COLUMNS = {"share", "responder_rate", "share_identified", "exact_agreement",
                   "within_one_agreement"}


def number_format(name: str, values: pd.Series) -> str | None:
    """The display format of a column: rounded for reading, the full value kept in the cell.

    >>> number_format("p", pd.Series([0.01234])), number_format("n", pd.Series([3, 4]))
    ('0.0000', None)
    >>> number_format("share", pd.Series([0.25])), number_format("kappa", pd.Series([0.3449]))
    ('0.0%', '0.000')
    """
    if not pd.api.types.is_float_dtype(values.dtype) or values.dtype == bool:
        return None
    v = values.to_numpy(dtype="float64", na_value=np.nan)
    v = v[np.isfinite(v)]
    if v.size == 0 or np.all(v == np.round(v)):
        return None
    if name in P_COLUMNS:
        return "0.0000"
    if name in PERCENT_COLUMNS or name.endswith(("_rate", "share")):
        return "0.0%"
    return "0.0" if name == "seconds" else "0.000"


def write_xlsx(sheets: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Write one sheet per table: bold frozen header, autofilter, neutralized text, fractional
    numbers shown rounded (:func:`number_format`) with their full precision kept in the cell.

    The workbook (styles, header, views, filters) is made by xlsxwriter; the data rows are then
    added to each sheet's XML in one pass.
    """
    path = Path(path)
    frames = {name[:31]: df for name, df in sheets.items()}
    skeleton = path.with_name(path.name + ".part")
    wb = xlsxwriter.Workbook(str(skeleton), {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_urls": False, "strings_to_numbers": False})
    bold = wb.add_format({"bold": True})
    formats: dict[str, xlsxwriter.format.Format] = {}
    column_formats: dict[str, list] = {}
    for name, df in frames.items():
        ws = wb.add_worksheet(name)
        column_formats[name] = []
        for col, title in enumerate(df.columns):
            ws.write_string(0, col, str(title), bold)
            width = max(len(str(title)), 8) + 2
            shown = number_format(str(title), df[title]) if len(df) else None
            fmt = formats.setdefault(shown, wb.add_format({"num_format": shown})) if shown else None
            column_formats[name].append(fmt)
            ws.set_column(col, col, min(width, 40), fmt)
        ws.freeze_panes(1, 0)
        if df.shape[1]:
            ws.autofilter(0, 0, max(len(df), 1), df.shape[1] - 1)
    wb.close()
    styles = {name: [f.xf_index if f is not None else None for f in fmts]
              for name, fmts in column_formats.items()}
    try:
        with zipfile.ZipFile(skeleton) as src, zipfile.ZipFile(
                path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
            sheet_parts = {f"xl/worksheets/sheet{i}.xml": (df, styles[name])
                           for i, (name, df) in enumerate(frames.items(), start=1)}
            for info in src.infolist():
                if info.filename not in sheet_parts:
                    dst.writestr(info, src.read(info.filename))
            for part, (df, style) in sheet_parts.items():
                xml = src.read(part).decode("utf-8")
                if not (df.shape[1] and len(df)):
                    dst.writestr(part, xml)
                    continue
                last = xl_rowcol_to_cell(len(df), df.shape[1] - 1)
                xml = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last}"/>', xml, count=1)
                head, tail = xml.split("</sheetData>", 1)
                with dst.open(part, "w") as fh, ThreadPoolExecutor(1) as writer:
                    fh.write(head.encode("utf-8"))
                    # Compress one block (zlib lets go of the GIL) while the next is assembled.
                    pending = None
                    for block in _rows_xml(df, styles=style):
                        data = block.encode("utf-8")
                        if pending is not None:
                            pending.result()
                        pending = writer.submit(fh.write, data)
                    if pending is not None:
                        pending.result()
                    fh.write(("</sheetData>" + tail).encode("utf-8"))
    finally:
        skeleton.unlink(missing_ok=True)


# --------------------------------------------------------------------------------- SAV


def spss_name(name: str, taken: set[str] | None = None) -> str:
    """A valid SPSS variable name: letters, digits, ``_`` (dashes and others become ``_``), starts
    with a letter, at most 64 bytes, not a reserved word, unique among ``taken`` (case-insensitive).

    >>> spss_name("face_merz-hand_month12")
    'face_merz_hand_month12'
    >>> spss_name("3d-scan"), spss_name("with")
    ('v3d_scan', 'with_')
    >>> spss_name("a" * 70, {"A" * 64})[-3:]
    'a_2'
    """
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    clean = re.sub(r"_+", "_", clean).strip("_") or "v"
    if not clean[0].isalpha():
        clean = "v" + clean
    if clean.upper() in SPSS_RESERVED:
        clean += "_"
    clean = clean[:64]
    taken_upper = {t.upper() for t in (taken or set())}
    candidate, n = clean, 1
    while candidate.upper() in taken_upper:
        n += 1
        suffix = f"_{n}"
        candidate = clean[: 64 - len(suffix)] + suffix
    return candidate


#: Reasons a photo could not be assessed (as the rating app records them), in code order.
REASONS = ("out_of_focus", "framing", "lighting", "identifying_feature", "other")
REASON_LABELS = {"out_of_focus": "Cannot assess: out of focus",
                 "framing": "Cannot assess: wrong region or framing",
                 "lighting": "Cannot assess: lighting",
                 "identifying_feature": "Cannot assess: identifying feature visible",
                 "other": "Cannot assess: other reason"}
NOT_RATED = "not rated"
NOT_PHOTOGRAPHED = "not photographed"


def missing_codes(scales: dict[str, Scale]) -> dict[str, int]:
    """User-missing codes: one per "cannot assess" reason, then "not rated", "not photographed".

    The codes are 91–95, 98 and 99, or 901–909 … when a scale has levels (or a VAS a range)
    that large.

    >>> from assess.study import shipped_scales
    >>> scales = shipped_scales()
    >>> missing_codes({s: scales[s] for s in ("wsrs", "merz-hand", "nrs-wrinkles")})
    {'out_of_focus': 91, 'framing': 92, 'lighting': 93, 'identifying_feature': 94, 'other': 95, \
'not rated': 98, 'not photographed': 99}
    >>> missing_codes({"vas-wrinkles": scales["vas-wrinkles"]})["lighting"]  # a VAS reaches 100
    903
    """
    top = max([abs(v) for s in scales.values() for v in s.values]
              + [abs(s.maximum) for s in scales.values() if s.continuous] + [2])
    base = 90
    while top >= base:
        base *= 10
    codes = {reason: base + i for i, reason in enumerate(REASONS, start=1)}
    codes.update({NOT_RATED: base + 8, NOT_PHOTOGRAPHED: base + 9})
    return codes


def missing_labels(codes: dict[str, int]) -> dict[float, str]:
    """Value labels of the codes of :func:`missing_codes`."""
    names = {**REASON_LABELS, NOT_RATED: "Not rated (photo taken)",
             NOT_PHOTOGRAPHED: "Not photographed at this visit"}
    return {float(code): names[reason] for reason, code in codes.items()}


def _reason_codes(reasons: pd.Series, codes: dict[str, int]) -> np.ndarray:
    """Code of each "cannot assess" reason; free text (from a ratings CSV) counts as "other"."""
    known = reasons.astype(object).where(reasons.isin(REASONS), "other")
    return known.map(codes).to_numpy(dtype="float64")


@dataclass
class Wide:
    """The per-participant table and its SPSS dictionary (labels, value labels, measures,
    user-missing ranges), and for each change variable what it is made of."""

    frame: pd.DataFrame
    labels: dict[str, str]
    value_labels: dict[str, dict]
    measures: dict[str, str]
    missing_ranges: dict[str, list]
    #: One entry per within-arm comparison: region, view, scale, rater, timepoint and the names of
    #: the baseline, follow-up, change and improvement variables (pairs: improvement only).
    comparisons: list[dict] = field(default_factory=list)


def _cell_values(use: pd.DataFrame, codes: dict[str, int]) -> pd.Series:
    """The wide file's value of each first showing: the rating, or the code of its reason."""
    value = use["score"].where(use["kind"] == "single", use["improvement"]).astype("float64")
    reason = _reason_codes(use["reason"], codes)
    return pd.Series(np.where(use["cannot_assess"].to_numpy(), reason, value.to_numpy()),
                     index=use.index)


def _absent(frame: pd.DataFrame, photos: pd.DataFrame | None, region, view, tps, codes
            ) -> np.ndarray:
    """For each participant: the code of a missing value (photo taken but not rated, or not
    photographed at all), NaN when the photos are not known."""
    if photos is None:
        return np.full(len(frame), np.nan)
    taken = photos[(photos["region"] == region) & (photos["view"] == view)
                   & photos["timepoint"].isin(tps)]
    n = taken.groupby("participant").size()
    have = frame["participant"].map(n).fillna(0).to_numpy() >= len(tps)
    return np.where(have, codes[NOT_RATED], codes[NOT_PHOTOGRAPHED]).astype("float64")


def wide_table(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
               arms: list[str], raters: list[str], photos: pd.DataFrame | None = None) -> Wide:
    """One row per participant, for SPSS, Stata and R.

    Variables: ``participant``, ``arm`` (numeric, labelled) and one per region [× view] × scale ×
    timepoint [× rater when several], e.g. ``face_wsrs_baseline``, holding the first showing's
    rating; then per follow-up ``face_wsrs_change_month12`` (follow-up − baseline, scale units) and
    ``face_wsrs_improvement_month12`` (the change in the scale's better direction: positive =
    better), empty unless both visits have a usable rating. Pairs give
    ``face_wsrs_improvement_month12`` (the pair's improvement score). A rating that is missing
    holds a user-missing code (:func:`missing_codes`): the "cannot assess" reason, "not rated"
    or "not photographed" (the latter two only when ``photos`` are given).
    """
    codes = missing_codes(scales)
    lowest = float(min(codes.values()))
    use = long[~long["repeat"].to_numpy(dtype=bool)]
    use = use.assign(value=_cell_values(use, codes))
    several = len(raters) > 1
    arm_codes = {a: i + 1 for i, a in enumerate(arms)}
    arm_of = long.drop_duplicates("participant").set_index("participant")["arm"]
    frame = pd.DataFrame({"participant": sorted(set(long["participant"].unique().tolist()))})
    frame["arm"] = frame["participant"].map(arm_of).map(arm_codes).astype("float64")
    w = Wide(frame, {"participant": "Participant", "arm": "Treatment arm"},
             {"arm": {float(v): k for k, v in arm_codes.items()}},
             {"participant": "nominal", "arm": "nominal"}, {})
    taken = {"participant", "arm"}
    tp_order = {t: i for i, t in enumerate(timepoints)}
    pivot = use.pivot_table(index="participant", columns=["region", "view", "scale", "kind",
                                                           "timepoint", "rater"],
                            values="value", aggfunc="first")
    groups = (use[["region", "view", "scale", "kind", "rater"]].drop_duplicates()
              .sort_values(["region", "view", "kind", "rater"]))
    columns: dict[str, pd.Series] = {}

    def add(name_parts, label, values, value_labels, measure, with_missing=True):
        name = spss_name("_".join(p for p in name_parts if p), taken)
        taken.add(name)
        w.labels[name] = label[:255]
        w.value_labels[name] = value_labels
        w.measures[name] = measure
        if with_missing:
            w.value_labels[name] = {**value_labels, **missing_labels(codes)}
            w.missing_ranges[name] = [{"lo": lowest, "hi": float(max(codes.values()))}]
        columns[name] = values
        return name

    for region, view, scale_id, kind, rater in groups.itertuples(index=False):
        scale = scales[scale_id]
        where = region + (f" ({view})" if view else "")
        by = f", rater {rater}" if several else ""
        rparts = [rater] if several else []
        tps = sorted(set(use.loc[(use["region"] == region) & (use["view"] == view)
                                 & (use["scale"] == scale_id) & (use["kind"] == kind)
                                 & (use["rater"] == rater), "timepoint"].tolist()), key=tp_order.get)
        if kind == "pair":
            for tp in tps:
                values = frame["participant"].map(pivot[(region, view, scale_id, kind, tp, rater)])
                absent = _absent(frame, photos, region, view, (timepoints[0], tp), codes)
                name = add([region, view, scale_id, "improvement", tp] + rparts,
                           f"{where}: {scale.name}, improvement {tp} vs {timepoints[0]}{by}",
                           values.fillna(pd.Series(absent)), dict(_PAIR_LABELS), "ordinal")
                w.comparisons.append({"region": region, "view": view, "scale": scale_id,
                                      "rater": rater, "timepoint": tp, "kind": "pair",
                                      "improvement": name})
            continue
        # A VAS is a measurement (SPSS "scale"), with no value labels but those of missing codes.
        measure = {"categorical": "nominal", "vas": "scale"}.get(scale.kind, "ordinal")
        levels = {float(lv.value): lv.label for lv in scale.levels}
        names = {}
        for tp in tps:
            values = frame["participant"].map(pivot[(region, view, scale_id, kind, tp, rater)])
            absent = _absent(frame, photos, region, view, (tp,), codes)
            names[tp] = add([region, view, scale_id, tp] + rparts, f"{where}: {scale.name}, {tp}{by}",
                            values.fillna(pd.Series(absent)), levels, measure)
        base = timepoints[0]
        if base not in names:
            continue
        for tp in [t for t in tps if t != base]:
            before = columns[names[base]].where(columns[names[base]] < lowest)
            after = columns[names[tp]].where(columns[names[tp]] < lowest)
            change = after - before
            sign = -1.0 if scale.better == "lower" else 1.0
            c = add([region, view, scale_id, "change", tp] + rparts,
                    f"{where}: {scale.name}, change {tp} - {base} (scale units){by}", change, {},
                    "scale", with_missing=False)
            i = add([region, view, scale_id, "improvement", tp] + rparts,
                    f"{where}: {scale.name}, improvement {tp} vs {base} "
                    f"({'points' if scale.continuous else 'levels'} better){by}",
                    (change * sign) + 0.0, {}, "scale", with_missing=False)
            w.comparisons.append({"region": region, "view": view, "scale": scale_id,
                                  "rater": rater, "timepoint": tp, "kind": "single",
                                  "baseline": names[base], "followup": names[tp],
                                  "change": c, "improvement": i})
    if columns:
        w.frame = pd.concat([frame, pd.DataFrame(columns)], axis=1)
    return w


_PAIR_LABELS = {-2.0: "Much better baseline", -1.0: "Better baseline", 0.0: "No difference",
                1.0: "Better follow-up", 2.0: "Much better follow-up"}


def write_sav(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
              arms: list[str], raters: list[str], path: str | Path, file_label: str = "",
              photos: pd.DataFrame | None = None) -> Wide:
    """Write the per-participant SPSS file (see :func:`wide_table`); returns its table."""
    w = wide_table(long, scales, timepoints, arms, raters, photos)
    write_wide_sav(w, path, file_label)
    return w


def write_wide_sav(w: Wide, path: str | Path, file_label: str = "") -> None:
    """Write a table of :func:`wide_table` as an SPSS file with its dictionary."""
    import pyreadstat

    formats = {c: f"F8.{_decimals(w.frame[c])}" for c in w.frame.columns if c != "participant"}
    pyreadstat.write_sav(w.frame, str(path), file_label=file_label[:64], column_labels=w.labels,
                         variable_value_labels=w.value_labels, variable_measure=w.measures,
                         variable_format=formats, missing_ranges=w.missing_ranges)


def _decimals(column: pd.Series) -> int:
    """Decimals a numeric column needs to show its values (0 for whole numbers, at most 3):
    half steps and VAS values are not rounded away on screen."""
    if not pd.api.types.is_numeric_dtype(column):
        return 0
    v = column.astype("float64").to_numpy(na_value=np.nan)
    v = v[~np.isnan(v)]
    for d in range(4):
        if np.allclose(v, np.round(v, d), rtol=0, atol=1e-9):
            return d
    return 3


def long_table(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
               arms: list[str]) -> Wide:
    """One row per rating (first showings, disguised repeats, "cannot assess"), for SPSS.

    ``arm`` and ``timepoint`` are numeric with value labels (timepoints in study order);
    ``score`` (and ``improvement`` for pairs) holds the rating or the user-missing code of the
    "cannot assess" reason; ``repeat``, ``cannot_assess`` and ``baseline_identified`` are 0/1;
    ``revision`` counts the rater's answers to the item (1 = never revised); ``seconds`` is the
    time the photo was on screen.
    """
    codes = missing_codes(scales)
    lowest, highest = float(min(codes.values())), float(max(codes.values()))
    frame = _export_frame(long[[c for c in long.columns if c in LONG_LABELS]])
    arm_codes = {a: float(i + 1) for i, a in enumerate(arms)}
    tp_codes = {t: float(i + 1) for i, t in enumerate(timepoints)}
    frame["arm"] = long["arm"].map(arm_codes).astype("float64").to_numpy()
    frame["timepoint"] = long["timepoint"].map(tp_codes).astype("float64").to_numpy()
    reason = _reason_codes(long["reason"], codes)
    ca = long["cannot_assess"].to_numpy(dtype=bool)
    single = (long["kind"] == "single").to_numpy()
    score = long["score"].astype("float64").to_numpy(na_value=np.nan)
    improvement = long["improvement"].astype("float64").to_numpy(na_value=np.nan)
    frame["score"] = np.where(ca & single, reason, score)
    frame["improvement"] = np.where(ca & ~single, reason, improvement)
    for col in ("seconds", "revision", "repeat", "cannot_assess", "baseline_identified"):
        frame[col] = frame[col].astype("float64")
    used = sorted({s for s in long["scale"].unique().tolist()})
    score_labels = missing_labels(codes)
    if len(used) == 1:
        score_labels = {**{float(lv.value): lv.label for lv in scales[used[0]].levels},
                        **score_labels}
    yes_no = {0.0: "No", 1.0: "Yes"}
    w = Wide(frame, {k: v for k, v in LONG_LABELS.items() if k in frame.columns},
             {"arm": {v: k for k, v in arm_codes.items()},
              "timepoint": {v: k for k, v in tp_codes.items()}, "score": score_labels,
              "improvement": {**_PAIR_LABELS, **missing_labels(codes)}, "repeat": yes_no,
              "cannot_assess": yes_no, "baseline_identified": yes_no},
             {c: "nominal" for c in frame.columns}, 
             {"score": [{"lo": lowest, "hi": highest}],
              "improvement": [{"lo": lowest, "hi": highest}]})
    vas = bool(used) and all(scales[s].continuous for s in used)
    w.measures.update({"timepoint": "ordinal", "score": "scale" if vas else "ordinal",
                       "improvement": "ordinal",
                       "seconds": "scale", "revision": "scale"})
    return w


LONG_LABELS = {
    "participant": "Participant", "arm": "Treatment arm", "timepoint": "Visit",
    "region": "Region", "view": "View of the region", "scale": "Scale",
    "score": "Rating (first showing or repeat); 91-99: why missing",
    "rater": "Rater", "repeat": "Disguised repeat of an earlier photo",
    "seconds": "Seconds the photo was on screen", "code": "Blinded photo (or pair) code",
    "item": "Worklist item", "kind": "single photo or pair", "first_showing":
    "Code of the first showing (itself unless a repeat)", "better": "Pair answer: which side better",
    "first": "Pair answer: which side was taken first",
    "improvement": "Pair: improvement score (+2 much better follow-up .. -2 much better baseline)",
    "baseline_identified": "Pair: the baseline photo was named as taken first",
    "cannot_assess": "The rater could not assess the photo", "reason": "Why it could not be assessed",
    "comment": "Rater's comment", "answered_at": "When answered (UTC, ISO 8601)",
    "revision": "Answers to this item (1 = never revised)",
}


def long_sav_job(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
                 arms: list[str], path: str | Path, file_label: str = "") -> tuple:
    """``(pyreadstat function, frame, path, keyword arguments)`` writing the long SPSS file."""
    w = long_table(long, scales, timepoints, arms)
    # Plain object columns: pyreadstat writes them about three times faster than pandas' str.
    frame = w.frame.astype({c: object for c in w.frame.columns
                            if not pd.api.types.is_float_dtype(w.frame[c].dtype)})
    formats = {c: "F8.0" for c in ("arm", "timepoint", "improvement", "repeat",
                                   "cannot_assess", "baseline_identified", "revision")}
    formats["score"] = f"F8.{_decimals(w.frame['score'])}"  # half steps and VAS values shown
    formats["seconds"] = "F8.1"
    return ("write_sav", frame, str(path),
            {"file_label": file_label[:64], "column_labels": w.labels,
             "variable_value_labels": w.value_labels, "variable_measure": w.measures,
             "variable_format": formats, "missing_ranges": w.missing_ranges})


def run_job(job: tuple) -> None:
    """Write the file of a job of :func:`long_sav_job` (or of ``transport.xpt_job``)."""
    import pyreadstat

    func, frame, path, kwargs = job
    getattr(pyreadstat, func)(frame, path, **kwargs)


def write_long_sav(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
                   arms: list[str], path: str | Path, file_label: str = "") -> None:
    """Write the one-row-per-rating SPSS file (see :func:`long_table`)."""
    run_job(long_sav_job(long, scales, timepoints, arms, path, file_label))
