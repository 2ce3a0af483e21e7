"""Reporting: the results of a run as JSON, a self-contained HTML page and PNG plots."""

from fpgarec.reporting.html import write_report

__all__ = ["write_report"]
