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
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell

from ..csvfile import spreadsheet_safe
from ..study import Scale

__all__ = ["neutralize", "write_csv", "write_xlsx", "spss_name", "wide_table", "write_sav"]

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


def _rows_xml(df: pd.DataFrame, first_row: int = 2) -> Iterable[str]:
    """Worksheet ``<row>`` elements of a frame's values, starting at Excel row ``first_row``,
    one block of rows at a time."""
    names = [xl_col_to_name(i) for i in range(len(df.columns))]
    for start, frame in _chunks(df):
        rows = np.arange(first_row + start, first_row + start + len(frame)).astype(str).astype(object)
        parts: list = ['<row r="', rows, '">']
        for name, col in zip(names, frame.columns):
            rest = _unique_render(frame[col], lambda v: f'"><v>{_number_text(v)}</v></c>',
                                  _xlsx_text, '"/>')
            parts += [f'<c r="{name}', rows, rest]
        parts.append("</row>")
        yield _join_rows(parts, len(frame))


def write_xlsx(sheets: dict[str, pd.DataFrame], path: str | Path) -> None:
    """Write one sheet per table: bold frozen header, autofilter, neutralized text.

    The workbook (styles, header, views, filters) is made by xlsxwriter; the data rows are then
    added to each sheet's XML in one pass.
    """
    path = Path(path)
    frames = {name[:31]: df for name, df in sheets.items()}
    skeleton = path.with_name(path.name + ".part")
    wb = xlsxwriter.Workbook(str(skeleton), {"constant_memory": True, "strings_to_formulas": False,
                                             "strings_to_urls": False, "strings_to_numbers": False})
    bold = wb.add_format({"bold": True})
    for name, df in frames.items():
        ws = wb.add_worksheet(name)
        for col, title in enumerate(df.columns):
            ws.write_string(0, col, str(title), bold)
            width = max(len(str(title)), 8) + 2
            ws.set_column(col, col, min(width, 40))
        ws.freeze_panes(1, 0)
        if df.shape[1]:
            ws.autofilter(0, 0, max(len(df), 1), df.shape[1] - 1)
    wb.close()
    try:
        with zipfile.ZipFile(skeleton) as src, zipfile.ZipFile(
                path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
            sheet_parts = {f"xl/worksheets/sheet{i}.xml": df
                           for i, df in enumerate(frames.values(), start=1)}
            for info in src.infolist():
                if info.filename not in sheet_parts:
                    dst.writestr(info, src.read(info.filename))
            for part, df in sheet_parts.items():
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
                    for block in _rows_xml(df):
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


def wide_table(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
               arms: list[str], raters: list[str]):
    """One row per participant; returns ``(frame, variable labels, value labels, measures)``.

    Variables: ``participant``, ``arm`` (numeric, labelled) and one per region [× view] × scale ×
    timepoint [× rater when several], e.g. ``face_wsrs_baseline``; pairs give
    ``face_wsrs_improvement_month12``. First showings only, "cannot assess" left empty.
    """
    use = long[~long["repeat"] & ~long["cannot_assess"]]
    participants = sorted(set(long["participant"].unique().tolist()))
    several = len(raters) > 1
    arm_codes = {a: i + 1 for i, a in enumerate(arms)}
    arm_of = long.drop_duplicates("participant").set_index("participant")["arm"]
    frame = pd.DataFrame({"participant": participants})
    frame["arm"] = frame["participant"].map(arm_of).map(arm_codes).astype("float64")
    labels = {"participant": "Participant", "arm": "Treatment arm"}
    value_labels: dict[str, dict] = {"arm": {float(v): k for k, v in arm_codes.items()}}
    measures = {"participant": "nominal", "arm": "nominal"}
    taken = {"participant", "arm"}
    tp_order = {t: i for i, t in enumerate(timepoints)}
    use = use.assign(value=use["score"].where(use["kind"] == "single", use["improvement"])
                     .astype("float64"))
    keys = (use[["region", "view", "scale", "kind", "timepoint", "rater"]].drop_duplicates()
            .assign(_t=lambda d: d["timepoint"].map(tp_order))
            .sort_values(["region", "view", "kind", "rater", "_t"]))
    pivot = use.pivot_table(index="participant", columns=["region", "view", "scale", "kind",
                                                           "timepoint", "rater"],
                            values="value", aggfunc="first")
    columns = {}
    for region, view, scale_id, kind, tp, rater in keys.drop(columns="_t").itertuples(index=False):
        scale = scales[scale_id]
        parts = [region, view, scale_id] + (["improvement"] if kind == "pair" else []) + [tp]
        if several:
            parts.append(rater)
        name = spss_name("_".join(p for p in parts if p), taken)
        taken.add(name)
        where = region + (f" ({view})" if view else "")
        if kind == "pair":
            label = f"{where}: {scale.name}, improvement {tp} vs {timepoints[0]}"
            value_labels[name] = {-2.0: "Much better baseline", -1.0: "Better baseline",
                                  0.0: "No difference", 1.0: "Better follow-up",
                                  2.0: "Much better follow-up"}
        else:
            label = f"{where}: {scale.name}, {tp}"
            value_labels[name] = {float(lv.value): lv.label for lv in scale.levels}
        if several:
            label += f", rater {rater}"
        labels[name] = label[:255]
        measures[name] = "nominal" if scale.kind == "categorical" and kind != "pair" else "ordinal"
        columns[name] = frame["participant"].map(pivot[(region, view, scale_id, kind, tp, rater)])
    if columns:
        frame = pd.concat([frame, pd.DataFrame(columns)], axis=1)
    return frame, labels, value_labels, measures


def write_sav(long: pd.DataFrame, scales: dict[str, Scale], timepoints: tuple[str, ...],
              arms: list[str], raters: list[str], path: str | Path, file_label: str = "") -> None:
    """Write the per-participant SPSS file (see :func:`wide_table`)."""
    import pyreadstat

    frame, labels, value_labels, measures = wide_table(long, scales, timepoints, arms, raters)
    formats = {c: "F8.0" for c in frame.columns if c != "participant"}
    pyreadstat.write_sav(frame, str(path), file_label=file_label[:64], column_labels=labels,
                         variable_value_labels=value_labels, variable_measure=measures,
                         variable_format=formats)
