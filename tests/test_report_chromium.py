"""The reviewer's report of a real (quick, SIMULATED) run: every section and figure, and how it shows
in headless Chromium. The Chromium check is skipped, with the reason, when no browser is installed
(`.ci/run` installs Debian's `chromium`)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from ml.experiments import load_experiment, run_experiment
from ml.report import find_chromium, screenshot

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "urd_window.toml"

SECTIONS = {"cohort", "exposure", "window", "statistic-map", "bootstrap", "sides", "window-sentence", "incidence",
            "risk", "models", "model-metrics", "models-floor", "models-ceiling", "shap", "shap-vs-scan", "shap-floor",
            "shap-ceiling", "provenance", "simulated-banner", "verdict", "run-id", "dataset-digest", "code-version"}
# a benefit-harm run (the default): models, calibration and SHAP per side; aggregate SHAP views only
FIGURES = {"exposure", "statistic_map", "bootstrap", "side_profiles", "floor_incidence", "ceiling_incidence",
           "incidence_curves", "risk_curves", *(f"{side}_{name}" for side in ("floor", "ceiling")
                                                for name in ("calibration_xgb", "shap_importance", "shap_dependence"))}


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.figures, self.images, self.links = set(), set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
            if tag == "figure":
                self.figures.add(a["id"].removeprefix("fig-"))
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag in ("a", "link", "script"):
            self.links.append(a.get("href") or a.get("src") or "")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    e = load_experiment(EXPERIMENT)
    e = replace(e, window=replace(e.window, permutations=49, bootstraps=30, folds=3),
                models=replace(e.models, n_trials=4, tuning_folds=3, cv_folds=3, cv_repeats=2))
    folder = tmp_path_factory.mktemp("run") / "quick"
    outcome = run_experiment(e, out_dir=folder, run_name="quick", run_id="0123456789abcdef", echo=lambda line: None)
    assert outcome.ok, outcome.error
    return folder / "report.html"


def test_report_has_every_section_and_figure_embedded(report):
    text = report.read_text()
    outline = _Outline()
    outline.feed(text)
    assert SECTIONS <= outline.ids, SECTIONS - outline.ids
    assert FIGURES <= outline.figures, FIGURES - outline.figures
    assert not {"shap_waterfall", "shap_beeswarm"} & outline.figures  # no individual-level views
    assert outline.images and all(src.startswith("data:image/png;base64,") for src in outline.images)
    assert all(link.startswith("#") for link in outline.links)  # self-contained: nothing fetched
    assert "SIMULATED DATA" in text and "0123456789abcdef" in text
    assert "adjusted p" in text and "95% CI" in text


@pytest.mark.chromium
def test_report_shows_in_headless_chromium(report, tmp_path):
    if find_chromium() is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    from PIL import Image

    png = screenshot(report, tmp_path / "shot.png", width=1280, height=4000)
    img = np.asarray(Image.open(png).convert("RGB"))
    assert img.shape[:2] == (4000, 1280)
    # not blank: plenty of ink, and many colours (figures, not just text)
    assert (img.min(axis=2) < 200).mean() > 0.05
    assert len(np.unique(img[::4, ::4].reshape(-1, 3), axis=0)) > 500
    # the SIMULATED banner (#b00020) runs across the top of the page
    top = img[5:30, 100:1100].reshape(-1, 3).astype(int)
    assert (np.abs(top - [176, 0, 32]).sum(axis=1) < 40).mean() > 0.5


def test_screenshot_reports_a_missing_browser(report, tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert find_chromium() is None
    with pytest.raises(FileNotFoundError, match="no Chromium found on PATH"):
        screenshot(report, tmp_path / "x.png")
