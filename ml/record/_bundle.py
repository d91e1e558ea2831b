"""The local output folder of one run: what the report is made from, and what MLflow receives.

A run writes everything here first (``runs/<run-name>/``), so an unreachable tracking server
never loses results; the folder is then logged as the run's artefacts as it is, and
``atgwin report RUN_ID`` renders the report again from the downloaded copy. Layout::

    run.json              manifest: status, steps and their timing, provenance, MLflow ids
    results.json          the numbers (a RunRecord): cohort summary, window, models, SHAP, transport
    experiment.toml       the experiment file as run
    window/window.json    the ExposureWindow (exactly one; transport windows live elsewhere)
    transport/*.json      transportability results (experiments with a [transport] section)
    figures/*.png         figures (figures/index.json: title, caption, section of each)
    tables/*.csv          aggregate tables (scan statistics, bootstrap bounds, metrics, ...)
    errors.txt            why the run failed (validation errors, traceback summary)
    report.html           the reviewer's report

Individual-level views (per-patient SHAP, only when the experiment asks with ``[models]
private_views = true``) go to a sibling folder, ``runs/<run-name>.private/`` (:meth:`RunBundle.private`),
so they are never among what is sent to MLflow.

Every file is written whole or not at all (``ml/_atomic.py``: a temporary file, then a rename),
so a run killed or out of disk space never leaves a truncated ``run.json`` or table behind.

Nothing in the run folder holds patient-level rows: tables are per window, per resample, per fold or per
outcome, never per patient.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ml._atomic import atomic_path, write_atomic
from ml.record._record import RunRecord, jsonable

__all__ = ["RunBundle"]


class RunBundle:
    """Read and write the files of one run folder.

    Parameters
    ----------
    root : path-like
        The run folder (created on first write).
    """

    MANIFEST = "run.json"
    RESULTS = "results.json"
    WINDOW = "window/window.json"
    REPORT = "report.html"
    ERRORS = "errors.txt"
    EXPERIMENT = "experiment.toml"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def private(self) -> RunBundle:
        """The run's private folder, ``<root>.private`` beside (not inside) the run folder.

        It holds the individual-level views a local, private report may show (``atgwin report
        RUN_FOLDER --private``). It is outside :attr:`root`, so publishing the run folder to
        MLflow never sends it.
        """
        return RunBundle(self.root.with_name(self.root.name + ".private"))

    # ------------------------------------------------------------------------------ generic
    def path(self, name: str) -> Path:
        """Absolute path of ``name`` inside the folder."""
        return self.root / name

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def write_text(self, name: str, text: str) -> Path:
        return write_atomic(self.path(name), text)

    def read_text(self, name: str) -> str | None:
        p = self.path(name)
        return p.read_text() if p.is_file() else None

    def write_json(self, name: str, data) -> Path:
        return self.write_text(name, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")

    def read_json(self, name: str, default=None):
        text = self.read_text(name)
        return default if text is None else json.loads(text)

    # ------------------------------------------------------------------------ manifest/results
    def update(self, name: str, **fields) -> dict:
        """Merge ``fields`` into the JSON document ``name`` and write it back at once."""
        doc = self.read_json(name, {}) or {}
        doc.update(jsonable(fields))
        self.write_json(name, doc)
        return doc

    def manifest(self) -> dict:
        return self.read_json(self.MANIFEST, {}) or {}

    def record(self) -> RunRecord:
        """``results.json`` as a :class:`RunRecord` (empty when the file does not exist yet).

        Raises
        ------
        RecordError
            The file was written by a newer version of atgwin, or is not a run record.
        """
        return RunRecord.from_dict(self.read_json(self.RESULTS, {}) or {}, source=str(self.path(self.RESULTS)))

    def write_record(self, record: RunRecord) -> Path:
        """Write ``record`` as ``results.json`` (whole or not at all)."""
        return self.write_json(self.RESULTS, record.to_dict())

    # -------------------------------------------------------------------------------- tables
    def write_table(self, name: str, frame: pd.DataFrame) -> Path:
        """``tables/<name>.csv`` (aggregate tables only; never patient rows)."""
        p = self.path(f"tables/{name}.csv")
        with atomic_path(p) as tmp:
            frame.to_csv(tmp, index=False)
        return p

    def read_table(self, name: str) -> pd.DataFrame | None:
        p = self.path(f"tables/{name}.csv")
        return pd.read_csv(p) if p.is_file() else None

    # ------------------------------------------------------------------------------- figures
    def save_figure(self, name: str, fig, *, title: str, caption: str = "", section: str = "",
                    dpi: int = 96) -> Path:
        """Save a matplotlib Figure as ``figures/<name>.png`` and index its title and caption.

        Figures are closed (detached) after saving so long runs do not accumulate them. When the
        manifest says the run is simulated, every figure is stamped "SIMULATED" in its corner.
        """
        p = self.path(f"figures/{name}.png")
        if self.manifest().get("simulated"):
            # every figure of a simulated run says so, wherever it ends up
            # above the top edge: the tight bounding box grows to hold it, so it never covers a title
            fig.text(1.0, 1.0, "SIMULATED DATA", ha="right", va="bottom", color="#b00020", fontsize=10,
                     fontweight="bold")
        with atomic_path(p) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        try:
            import matplotlib.pyplot as plt

            plt.close(fig)
        except Exception:  # noqa: BLE001 - a Figure not known to pyplot needs no closing
            pass
        index = self.read_json("figures/index.json", {}) or {}
        index[name] = {"title": title, "caption": caption, "section": section, "file": f"figures/{name}.png"}
        self.write_json("figures/index.json", index)
        return p

    def figures(self, section: str | None = None) -> dict[str, dict]:
        """Indexed figures (optionally of one section) whose file exists, in insertion order."""
        index = self.read_json("figures/index.json", {}) or {}
        return {k: v for k, v in index.items()
                if (section is None or v.get("section") == section) and self.path(v["file"]).is_file()}
