"""Reports from the store alone: tables (md, LaTeX, CSV), figures (PNG, PDF) and an index.

This package imports only :mod:`isoeps.results`; rows carry ``higher_is_better``.
"""

from isoeps.reports.report import write_report
from isoeps.reports.spec import ReportSpec, load_report_spec

__all__ = ["ReportSpec", "load_report_spec", "write_report"]
