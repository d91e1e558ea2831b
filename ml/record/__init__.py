"""The written record of one run: ``results.json`` (:class:`RunRecord`) and the run folder (:class:`RunBundle`).

This is the contract between the code that writes a run and the code that reads it: the pipeline
(``ml.experiments``) writes the folder; the report (``ml.report``), the tracking publisher
(``ml.tracking``) and the command line read it. It depends on nothing else in ``ml`` but the
atomic writer, so writers and readers import it without importing each other.
"""

from ml.record._bundle import RunBundle
from ml.record._record import SCHEMA_VERSION, RecordError, RunRecord, jsonable

__all__ = ["SCHEMA_VERSION", "RecordError", "RunBundle", "RunRecord", "jsonable"]
