"""Leak audit of a rater folder: does anything but the pixels tell participant or timepoint?

:func:`audit_report` scans every file under a rater folder and returns findings (each names the file,
the kind of leak and what was found) and, with the key folder, a table of file properties compared
between timepoints. :func:`audit_set` returns the findings only; ``assess randomize`` runs it on every
set it builds and refuses a set with findings.

What is checked
---------------
Every JPEG is walked marker by marker (our own parser, independent of any library). A blinded JPEG
may hold only SOI, the one fixed JFIF APP0 that :mod:`assess.deid` writes, DQT, SOF0, DHT, SOS with
its entropy-coded data, and EOI. Any other APPn (EXIF, XMP, ICC, IPTC/Photoshop, vendor), a COM
segment, another frame type (progressive, arithmetic, lossless), a malformed structure, or **any byte
after EOI** is a finding: exiftool does not report trailing data, so that check is ours. Any image that
is not a JPEG (PNG, TIFF, HEIC, GIF, WebP, BMP) is a finding. When ``exiftool`` is installed it is run
as an independent second opinion: any tag beyond the File, Composite and basic JFIF groups is a
finding. The audit stays correct without it.

Symbolic links and files whose modification times differ are findings too: formats.md gives every
file of a rater folder one fixed mtime, because write order can follow the source order.

With the key (``key/key.csv``, ``key/access.csv``, ``key/seed.txt``) every participant id, timepoint
name, source file name and its stem, source sha256, access code and the seed (when 6 or more digits)
is searched for, case-insensitively, as a whole word (not preceded or followed by a letter or digit):

* in every byte of every non-JPEG file, and of JPEG headers and segments;
* in JPEG entropy-coded scan data only for terms of at least :data:`MIN_SCAN_TERM` bytes. Short ids
  such as ``P07`` occur in compressed data by chance (about 6 hits per MB for 50 three-letter ids),
  whereas a 6-byte term is expected by chance about once in 10⁸ MB; an identifier hidden in scan data
  would have to be written there deliberately, and the segment/trailer checks catch every place an
  encoder or tool would put one.

Properties compared between timepoints (with the key)
-----------------------------------------------------
For each region and each timepoint against the others, the AUC of every property is computed from
the Mann–Whitney U statistic (``U / (n1·n2)``, folded to ``max(AUC, 1 − AUC)``: 0.5 means the property
says nothing about the timepoint, 1.0 that it separates them perfectly). Categorical properties use
the category that separates best. Four kinds of property:

* **fixed by design** (format, width, height, file size, quantization tables, Huffman tables,
  chroma subsampling, JPEG segment layout, metadata segments, mtime, permissions; for the full and
  the display copy): ``assess randomize`` makes them equal for every file of a kind in a region, so
  they are judged by their effect size alone: AUC > :data:`AUC_LIMIT` (0.55) is a finding at any
  sample size. With or without the key, a file whose fixed property differs from the other files
  of its kind and region is a finding too, naming the file (one tampered file among 60 moves the
  AUC by less than 0.02). A rater folder written before file sizes were made equal (no file has
  fill bytes) gets a note instead of the second check for file size; its AUC still decides.
  Two image files of one kind with the same bytes are a finding (``duplicate``: a disguised
  repeat must not be a copy of its first showing), a note in such an older folder.
* **randomized** (code, position in each rater's worklist, side in a pair): they vary by chance, and
  with a few dozen photos a chance AUC above 0.55 is common, so they are findings only when AUC >
  0.55 **and** the two-sided Mann–Whitney p-value is below :data:`P_LIMIT` (10⁻⁴). An AUC above
  0.55 that is not a finding is reported as a note saying so, and saying when the sample is too
  small for any AUC to reach that p-value (:func:`small_sample`), never as clean. (``assess
  randomize`` balances them to 0.55 or less wherever a region has 5 or more photos a timepoint.)
* **from the pixels** (padding border): it follows from the cameras' aspect ratios and a rater
  sees it; AUC > :data:`AUC_EXTREME_LIMIT` (0.8) is a finding at any sample size. The fix is
  ``fit = "crop"`` in ``[normalize]``.
* **content** (length of the entropy-coded image data, padding excluded): it follows from the
  detail and noise in the pixels, which the rater sees as they are; reported, never a finding.
  The files' sizes do not show it; only a program that parses the JPEG does.
* **visible** (luminance, white balance, sharpness, noise, background, subject size and place,
  measured on the display copies by :mod:`assess.pixels.visible`): what a rater sees without
  judging the skin. Above :data:`assess.audit.visible.VISIBLE_LIMIT` (0.6) a property is reported
  as a threat with the photos that contribute most, never as a finding (:mod:`assess.audit.visible`
  says why); ``[pixels] normalize = true`` matches white balance and exposure.

Every finding's advice is something the coordinator can do in ``study.toml`` or on the command
line (:data:`ADVICE`).

Modules
-------
One module per kind of finding: :mod:`.files` (symbolic links, modification times), :mod:`.jpeg`
(the marker walk, other image formats), :mod:`.identifiers` (the key's terms in names, bytes and
scan data), :mod:`.exiftool` (its second opinion), :mod:`.properties` (fixed, randomized, pixel and
content properties, files unlike their region), :mod:`.visible` (visible differences between
visits); :mod:`.auc` holds the statistics, :mod:`.findings` what they return, :mod:`.report` the
audit as a whole and :mod:`.sheet` the contact sheet.
"""

from __future__ import annotations

from .auc import small_sample, timepoint_auc
from .findings import (ADVICE, AUC_EXTREME_LIMIT, AUC_LIMIT, P_LIMIT, AuditError, AuditReport, Finding,
                       PropertyAUC)
from .identifiers import MIN_SCAN_TERM
from .jpeg import JpegWalk, walk_jpeg
from .report import audit_report, audit_set
from .sheet import contact_sheet

__all__ = [
    "Finding",
    "PropertyAUC",
    "AuditReport",
    "AuditError",
    "JpegWalk",
    "walk_jpeg",
    "audit_report",
    "audit_set",
    "contact_sheet",
    "AUC_LIMIT",
    "AUC_EXTREME_LIMIT",
    "ADVICE",
    "small_sample",
    "timepoint_auc",
    "P_LIMIT",
    "MIN_SCAN_TERM",
]
