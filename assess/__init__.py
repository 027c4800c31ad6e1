"""assess: blinded photo assessment for clinical trials.

Three stages, one module each: ``randomize`` (ingest → deid → blind), ``rate`` (store + app) and
``score`` (unblind, statistics, exports, report).
"""

__version__ = "0.1.0"
