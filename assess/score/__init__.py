"""Statistician stage: unblind with integrity checks, compute the trial's tables, write the files.

:func:`score` is the one entry point (``assess score`` calls it):

1. :mod:`.unblind` checks that key, rater folder, ratings and arms belong together and joins them
   into the long table (one row per rating), one step per module (:mod:`.folder`, :mod:`.readers`,
   :mod:`.ratings_db`, :mod:`.checks`, :mod:`.timepoints`, :mod:`.arms`, :mod:`.long`,
   :mod:`.findings`);
2. :mod:`.tables` computes the within-arm and between-arm tables, level counts and reliability
   (:mod:`.stats` and :mod:`.reliability` hold the tests);
3. :mod:`.export` writes CSV, XLSX and SAV, :mod:`.report` the self-contained HTML report.

All files are first written to a temporary folder inside ``out`` and moved in place at the end:
a failure leaves nothing partial behind, and existing results are never overwritten.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from . import calibration, panel, qualification
from .tables import distribution_table, reliability_table, summary_table
from .unblind import Finding, ScoreError, Unblinded, unblind

__all__ = ["score", "analyse", "write_files", "default_inputs", "Analysis", "ScoreResult", "ScoreError", "Finding",
           "OUTPUTS", "STEPS"]

#: The files written under ``--out``, in the order they are written.
OUTPUTS = ("ratings_long.csv", "summary.csv", "reliability.csv", "distribution.csv",
           "panel.csv", "panel_scores.csv", "qualification.csv", "calibration.csv",
           "ratings.xlsx", "ratings.sav", "ratings_long.sav", "analysis.sps",
           "ratings.dta", "analysis.R", "qs.xpt", "define.xml", "report.html")

#: Progress steps reported to the ``progress`` callback.
STEPS = ("check and unblind", "statistics", "csv", "xlsx", "sav, dta, R, xpt", "report")


@dataclass
class Analysis:
    """The unblinded data and the tables computed from it."""

    unblinded: Unblinded
    summary: pd.DataFrame
    reliability: pd.DataFrame
    distribution: pd.DataFrame
    panel: pd.DataFrame | None = None  # the panel's agreement (score.panel.PANEL_COLUMNS)
    panel_scores: pd.DataFrame | None = None  # per item: scores, consensus, adjudication, final
    qualification: pd.DataFrame | None = None  # training attempts (score.qualification.COLUMNS)
    calibration: pd.DataFrame | None = None  # per rater and block: agreement with the reference

    @property
    def findings(self) -> list[Finding]:
        return self.unblinded.findings


@dataclass
class ScoreResult:
    """What :func:`score` did: the files written, the findings, the time each part took."""

    out: Path
    files: list[Path]
    analysis: Analysis
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        return self.analysis.findings


def _noop(step: str) -> None:
    del step


def analyse(rater_dir, key_dir, *, db=None, ratings=None, participants=None,
            allow_unlocked: bool = False, progress: Callable[[str], None] = _noop,
            fingerprint: str | None = None) -> Analysis:
    """Check and unblind the inputs, then compute every table (no file is written)."""
    with _without_cyclic_gc():
        u = unblind(rater_dir, key_dir, db=db, ratings=ratings, participants=participants,
                    allow_unlocked=allow_unlocked, fingerprint=fingerprint)
        progress("check and unblind")
        scores, panel_rows, primary = panel.analyse_panel(u, db)
        summary = summary_table(u)
        if len(primary):
            summary = pd.concat([primary, summary], ignore_index=True)
        analysis = Analysis(u, summary, reliability_table(u), distribution_table(u), panel_rows,
                            scores,
                            qualification=qualification.qualification_table(u, key_dir, db),
                            calibration=calibration.calibration_table(u))
        progress("statistics")
    return analysis


@contextlib.contextmanager
def _without_cyclic_gc():
    """Pause Python's cyclic garbage collector: reading a large set makes hundreds of thousands
    of small objects (freed by reference counting), and the collector would walk them all again
    and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_files(analysis: Analysis, out: str | Path, progress: Callable[[str], None] = _noop
                ) -> list[Path]:
    """Write every output file of :data:`OUTPUTS` into ``out`` (which must not hold them yet)."""
    with _without_cyclic_gc():
        return _write_files(analysis, out, progress)


def _write_files(analysis: Analysis, out: str | Path, progress: Callable[[str], None]
                 ) -> list[Path]:
    from . import export, report, report_panel

    out = Path(out)
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing:
        raise ScoreError(f"{out}: already holds {', '.join(existing)} from an earlier run; give a "
                         "new --out folder (results are never overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    u = analysis.unblinded
    tmp = Path(tempfile.mkdtemp(prefix=".assess-score-", dir=out))
    # The charts are drawn in a child process while this one writes the tables.
    renderer = report.ChartRenderer()
    try:
        sections = report.charts(u, analysis.distribution)
        renderer.submit(report.chart_specs(sections))
        export.write_csv(u.long, tmp / "ratings_long.csv")
        export.write_csv(analysis.summary, tmp / "summary.csv")
        export.write_csv(analysis.reliability, tmp / "reliability.csv")
        export.write_csv(analysis.distribution, tmp / "distribution.csv")
        export.write_csv(_or_empty(analysis.panel, panel.PANEL_COLUMNS), tmp / "panel.csv")
        export.write_csv(_or_empty(analysis.panel_scores, panel.SCORE_COLUMNS),
                         tmp / "panel_scores.csv")
        export.write_csv(_or_empty(analysis.qualification, qualification.COLUMNS),
                         tmp / "qualification.csv")
        export.write_csv(_or_empty(analysis.calibration, calibration.COLUMNS),
                         tmp / "calibration.csv")
        progress("csv")
        meta = u.set.meta
        label = f"{meta.get('study_id', '')} {meta.get('set_id', '')}"
        wide = export.wide_table(u.long, u.set.scales, u.timepoints, u.arms, u.set.raters,
                                 u.photos)
        export.write_xlsx(_workbook(analysis, wide), tmp / "ratings.xlsx")
        progress("xlsx")
        _write_packages(analysis, wide, tmp, label)
        progress("sav, dta, R, xpt")
        html = report.render_report(u, analysis.summary, analysis.reliability,
                                    analysis.distribution,
                                    drawn=report.figures(sections, renderer),
                                    panel_html=report_panel.panel_section(
                                        u, analysis.panel, analysis.panel_scores)
                                    + qualification.qualification_section(
                                        u, analysis.qualification)
                                    + calibration.section_html(u, analysis.calibration))
        (tmp / "report.html").write_text(html, encoding="utf-8")
        progress("report")
        written = []
        for name in OUTPUTS:
            os.replace(tmp / name, out / name)
            written.append(out / name)
        return written
    finally:
        renderer.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _or_empty(table: pd.DataFrame | None, columns) -> pd.DataFrame:
    return table if table is not None else pd.DataFrame(columns=list(columns))


def _workbook(analysis: Analysis, wide) -> dict[str, pd.DataFrame]:
    """The sheets of ``ratings.xlsx``: the tables, the wide table (a missing rating says why in
    words) and the data dictionary of every column."""
    from . import dictionary, export

    u = analysis.unblinded
    frame = wide.frame.copy()
    for name in wide.missing_ranges:
        words = {k: v for k, v in wide.value_labels[name].items()
                 if k >= wide.missing_ranges[name][0]["lo"]}
        values = frame[name]
        frame[name] = values.astype(object).where(~values.isin(list(words)),
                                                  values.map(words))
    sheets = {"ratings": u.long, "wide": frame, "summary": analysis.summary,
              "reliability": analysis.reliability, "distribution": analysis.distribution}
    if len(u.set.raters) >= 2:  # a panel: its agreement and each item's scores, as the CSVs
        sheets["panel"] = _or_empty(analysis.panel, panel.PANEL_COLUMNS)
        sheets["panel_scores"] = _or_empty(analysis.panel_scores, panel.SCORE_COLUMNS)
    if u.calibration is not None:  # hidden calibration photos: each rater's drift
        sheets["calibration"] = _or_empty(analysis.calibration, calibration.COLUMNS)
    long_labels = {**export.LONG_LABELS,
                   "score": "Rating; empty when the photo could not be assessed (see reason)",
                   "improvement": "Pair: improvement score (+2 much better follow-up .. -2 much "
                                  "better baseline); empty when not assessed"}
    sheets["dictionary"] = dictionary.dictionary(sheets, long_labels, wide)
    return sheets


def _write_packages(analysis: Analysis, wide, tmp: Path, label: str) -> None:
    """SPSS (wide and long, with analysis.sps), Stata, R, SAS transport (QS) and define.xml."""
    from . import export, syntax, transport

    u = analysis.unblinded
    export.write_wide_sav(wide, tmp / "ratings.sav", file_label=label)
    (tmp / "analysis.sps").write_text(syntax.spss_syntax(wide, analysis.summary, u.arms, label),
                                      encoding="utf-8")
    transport.write_dta(wide, u.set.scales, tmp / "ratings.dta", file_label=label)
    (tmp / "analysis.R").write_text(syntax.r_script(u.set.scales, u.timepoints, label),
                                    encoding="utf-8")
    qs = transport.qs_table(u.long, u.set.scales, u.timepoints, u.set.study_id)
    export.write_long_sav(u.long, u.set.scales, u.timepoints, u.arms, tmp / "ratings_long.sav",
                          file_label=label)
    transport.write_xpt(qs, tmp / "qs.xpt")
    (tmp / "define.xml").write_bytes(transport.define_xml(
        qs, u.set.study_id, str(u.set.meta.get("title", "")),
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")))


def default_inputs(rater_dir, db=None, ratings=None, out=None, now: datetime | None = None
                   ) -> tuple[Path | str | None, Path | None, Path]:
    """``(db, ratings, out)`` with the defaults of ``assess score`` filled in (``db`` a path or a
    PostgreSQL URL).

    Without ``--db`` and ``--ratings`` the ratings are the rating app's database
    ``results/<set-id>/ratings.sqlite`` (as ``assess rate`` and ``assess status`` use it); without
    ``--out`` the results go to a fresh folder ``results/<set-id>/scores-<UTC time>``.

    Raises
    ------
    ScoreError
        When neither is given and the default database does not exist, saying so.
    """
    from .folder import read_meta

    set_id = str(read_meta(Path(rater_dir))["set_id"])
    results = Path("results") / set_id
    if db is None and ratings is None:
        db = results / "ratings.sqlite"
        if not db.is_file():
            raise ScoreError(f"neither --db nor --ratings was given, and the rating app's "
                             f"database {db} (the default) does not exist; give --db FILE or "
                             "--ratings FILE.csv")
    if out is None:
        stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
        out, n = results / f"scores-{stamp}", 1
        while out.exists():
            n += 1
            out = results / f"scores-{stamp}-{n}"
    from .. import store

    return (store.location(db) if db is not None else None,
            Path(ratings) if ratings is not None else None, Path(out))


def score(rater_dir, key_dir, out, *, db=None, ratings=None, participants=None,
          allow_unlocked: bool = False, progress: Callable[[str], None] = _noop,
          fingerprint: str | None = None) -> ScoreResult:
    """Unblind, check, compute and write every file; the one entry point of the scorer.

    Parameters
    ----------
    rater_dir, key_dir
        The ``rater/`` and ``key/`` folders of one blinded set.
    out
        Folder for the results (created; must not hold results of an earlier run).
    db, ratings
        Exactly one: the rating app's SQLite database, or a CSV of ratings made elsewhere.
    participants
        Optional CSV ``participant,arm``; without it every participant is in one arm ("all").
    allow_unlocked
        Score although a worklist is not locked (an interim look); a warning says so.
    progress
        Called with each name of :data:`STEPS` when that step is done.
    fingerprint
        The coordinator key's fingerprint from the trial master file: a set not signed by that
        key is refused.

    Raises
    ------
    ScoreError, SealError
        When the inputs do not belong together or do not match their seal; nothing is written.
    """
    out = Path(out)
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing:
        raise ScoreError(f"{out}: already holds {', '.join(existing)} from an earlier run; give a "
                         "new --out folder (results are never overwritten)")
    t0 = time.perf_counter()
    analysis = analyse(rater_dir, key_dir, db=db, ratings=ratings, participants=participants,
                       allow_unlocked=allow_unlocked, progress=progress, fingerprint=fingerprint)
    t1 = time.perf_counter()
    files = write_files(analysis, out, progress)
    t2 = time.perf_counter()
    return ScoreResult(out, files, analysis, {"statistics": t1 - t0, "files": t2 - t1,
                                              "total": t2 - t0})
