"""The reviewer's report: one self-contained HTML file per run, rendered from the run folder.

The run folder (``ml.record.RunBundle``: results, tables, figures) is what ``atgwin run``
writes first and logs to MLflow as is; :func:`render_report` / :func:`write_report` turn it into
the report, reading ``results.json`` as an ``ml.record.RunRecord``;
:mod:`figures <ml.report._figures>` draws the window-search figures.
"""

from ml.report import _figures as figures
from ml.report._chromium import find_chromium, screenshot
from ml.report._html import SECTIONS, render_report, write_report

__all__ = ["SECTIONS", "figures", "find_chromium", "render_report", "screenshot", "write_report"]
