"""The report's floor-and-ceiling section on hand-made run folders, one per finding of a benefit-harm
search (window, floor-only, ceiling-only, overlap, no-window), and on an older composite folder.

The windows are real :class:`ml.window.ExposureWindow` objects (validated on construction); the
model and SHAP payloads are what ``ml.experiments._pipeline`` writes to ``results.json``.
"""

from __future__ import annotations

import re

import pytest

from ml.experiments import RunBundle
from ml.report import render_report
from ml.window import BoundEvidence, ExposureWindow, Population, SideEffect
from ml.window._describe import endpoint_label, window_sentence

UNIT = "UE*day/mL"


def side(name, value, evidenced, p, ci):
    endpoints = ("agvhd2",) if name == "floor" else ("cmv|ebv",)
    reason = (f"{'under' if name == 'floor' else 'over'}-exposure harm on {endpoints[0]}: adjusted p = {p} < alpha 0.05"
              if evidenced else f"no evidence of a {name}: adjusted p = {p} is not below alpha 0.05")
    return BoundEvidence(side=name, endpoints=endpoints, horizon_days=180.0, statistic=3.1, p_value=p,
                         evidenced=evidenced, events=140 if name == "floor" else 240, value=value, ci=ci,
                         effect=SideEffect(1.6, 1.1, 2.2, "cross-fitted Cox, 5 folds"), reason=reason)


FINDINGS = {
    # finding: (status, lower, upper, floor (value, evidenced, p), ceiling (value, evidenced, p))
    "window": ("candidate", 110.0, 136.0, (110.0, True, 0.002), (136.0, True, 0.004)),
    "floor-only": ("candidate", 105.0, None, (105.0, True, 0.003), (150.0, False, 0.41)),
    "ceiling-only": ("candidate", None, 140.0, (95.0, False, 0.37), (140.0, True, 0.001)),
    "overlap": ("no-window", None, None, (140.0, True, 0.002), (110.0, True, 0.003)),
    "no-window": ("no-window", None, None, (100.0, False, 0.5), (150.0, False, 0.6)),
}


def window_of(finding) -> ExposureWindow:
    status, lower, upper, f, c = FINDINGS[finding]
    return ExposureWindow(
        exposure="auc_total", exposure_definition="total active-ATG AUC", unit=UNIT,
        population=Population("URD", "MAC", 324, 285), endpoint="floor=agvhd2;ceiling=cmv|ebv", horizon_days=180.0,
        lower=lower, upper=upper, target=123.0, lower_ci=None if lower is None else (92.0, 113.0),
        upper_ci=None if upper is None else (131.0, 186.0), ci_method="bootstrap percentile",
        p_value=0.002 if status == "candidate" or finding == "overlap" else 0.4, p_value_method="permutation",
        statistic=6.5, dataset_digest="abc", simulated=True, code_version="test", status=status, finding=finding,
        search_kind="benefit-harm", search={"alpha": 0.05, "estimate": "bagged"},
        floor=side("floor", f[0], f[1], f[2], (92.0, 113.0)), ceiling=side("ceiling", c[0], c[1], c[2], (131.0, 186.0)))


def cv(c, lo, hi):
    return {"harrell_c": {"mean": c, "sd": 0.01, "se": (hi - lo) / 3.92, "ci_low": lo, "ci_high": hi}}


def incidences(lower, upper):
    groups = [g for g, present in (("below", lower is not None), ("inside", True), ("above", upper is not None))
              if present]
    return [{"outcome": "x", "group": g, "horizon_days": 180.0, "n": 100, "events": 40, "incidence": 0.4,
             "ci_low": 0.3, "ci_high": 0.5, "p_value": None if g == "inside" else 0.01} for g in groups]


def bundle_for(tmp_path, finding, *, ceiling_at_chance=True) -> RunBundle:
    win = window_of(finding)
    art = win.to_dict()
    b = RunBundle(tmp_path / finding)
    b.write_json(RunBundle.MANIFEST, {"run_name": finding, "experiment": "urd_window", "status": "FINISHED",
                                      "simulated": True, "steps": []})
    fits = {"floor": {"endpoint": "agvhd2", "horizon_days": 180.0, "events": 140, "at_chance": False,
                      "best_params": {"max_depth": 2}, "xgb": cv(0.62, 0.58, 0.66), "cox": cv(0.60, 0.56, 0.64),
                      "tuning": {"tuning_n_trials": 4, "tuning_n_complete": 4, "tuning_n_pruned": 0,
                                 "tuning_best_score": 0.6}},
            "ceiling": {"endpoint": "cmv|ebv", "horizon_days": 180.0, "events": 240, "at_chance": ceiling_at_chance,
                        "best_params": {}, "xgb": cv(0.51, 0.47, 0.55) if ceiling_at_chance else cv(0.6, 0.56, 0.64),
                        "cox": cv(0.5, 0.46, 0.54), "tuning": {}}}
    shap = {"floor": {"name": "floor", "endpoint": "agvhd2", "side": "floor", "shap_bound": 108.0, "open": False,
                      "tolerance": 0.3, "drop": 0.6, "scan_bound": win.floor.value, "scan_ci": [92.0, 113.0],
                      "agrees": True, "at_chance": False, "partner": "age_years", "top_features": []},
            "ceiling": {"name": "ceiling", "endpoint": "cmv|ebv", "side": "ceiling", "shap_bound": 200.0,
                        "open": False, "tolerance": 0.1, "drop": 0.2, "scan_bound": win.ceiling.value,
                        "scan_ci": [131.0, 186.0], "agrees": False, "at_chance": ceiling_at_chance, "partner": None,
                        "top_features": []}}
    lower_f, upper_f = (win.lower, win.upper) if finding == "window" else (win.floor.value, win.ceiling.value)
    b.write_json(RunBundle.RESULTS, {
        "cohort": {"simulated": True},
        "truth": {"effect": "step", "floor": 100.0, "ceiling": 148.5, "overlap": False},
        "window": {"artefact": art, "status": win.status, "finding": win.finding, "lower": win.lower,
                   "upper": win.upper, "target": win.target, "lower_ci": win.lower_ci, "upper_ci": win.upper_ci,
                   "p_value": win.p_value, "naive_p_value": None, "statistic": 6.5, "argmax_bounds": [110.0, 136.0],
                   "n": 324, "events": 285, "n_excluded": 0, "effect": {}, "n_permutations": 999,
                   "n_bootstraps": 100},
        "side_incidences": {s: {"endpoint": s, "label": s, "horizon_days": 180.0, "lower": lower_f, "upper": upper_f,
                                "incidences": incidences(lower_f, upper_f)} for s in ("floor", "ceiling")},
        "models": {"kind": "benefit-harm", "n": 324, "cv": {"folds": 5, "repeats": 3}, "fits": fits},
        "shap": {"sides": shap, "scan_window": [win.lower, win.upper], "scan_status": win.status,
                 "finding": win.finding},
    })
    import pandas as pd

    rows = [{"side": s, "endpoint": f["endpoint"], "model": m, "metric": "harrell_c",
             "mean": f[k]["harrell_c"]["mean"], "sd": 0.01, "se": 0.02, "ci_low": f[k]["harrell_c"]["ci_low"],
             "ci_high": f[k]["harrell_c"]["ci_high"], "n_repeats": 3}
            for s, f in fits.items() for k, m in (("xgb", "XGBoost (tuned)"), ("cox", "Cox RCS spline"))]
    b.write_table("model_metrics", pd.DataFrame(rows))
    return b


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("finding", list(FINDINGS))
def test_every_finding_renders_its_sentence_and_both_sides(tmp_path, finding):
    html = render_report(bundle_for(tmp_path, finding))
    win = window_of(finding)
    sentence = window_sentence(win)
    assert "id='window-sentence'" in html and sentence.replace("&", "&amp;") in html
    assert "id='sides'" in html and "href='#sides'" in html
    text = text_of(html)
    # each side: its clinical outcome, its bound with interval, adjusted p, effect, incidences, model, SHAP
    assert "acute GVHD grade II-IV" in text and "CMV or EBV reactivation" in text
    assert "[92.0, 113.0]" in text and "[131.0, 186.0]" in text
    for p in (FINDINGS[finding][3][2], FINDINGS[finding][4][2]):
        assert f"{p:.3g}" in text
    assert "1.60 [1.10, 2.20]" in text  # each side's cross-fitted HR with its interval
    assert "Harrell's C 0.620 [0.580, 0.660]" in text
    assert "simulator's truth" in text.lower() and "148.5" in text
    unevidenced = [s for s, v in (("floor", FINDINGS[finding][3]), ("ceiling", FINDINGS[finding][4])) if not v[1]]
    assert text.count("not evidenced: the bound stays open") == len(unevidenced)
    if finding in ("floor-only", "ceiling-only", "overlap"):
        assert "not a window to dose" in text
    if finding == "no-window":
        assert "No exposure window." in text
    if finding == "overlap":
        assert "no exposure avoids both" in text


def test_a_model_at_chance_is_flagged_and_its_shap_section_says_what_that_means(tmp_path):
    html = render_report(bundle_for(tmp_path, "window", ceiling_at_chance=True))
    text = text_of(html)
    assert "Warning: the ceiling model is at chance." in text
    assert "This model is at chance" in text and "may describe noise" in text
    assert "is no independent cross-check of the scan" in text
    # the floor model is not at chance: one section warning only (ceiling), not two
    assert text.count("This model is at chance") == 1
    ok = text_of(render_report(bundle_for(tmp_path / "ok", "window", ceiling_at_chance=False)))
    assert "at chance" not in ok.replace("A model at chance", "")


def test_shap_bound_agreement_with_the_scan_is_stated(tmp_path):
    text = text_of(render_report(bundle_for(tmp_path, "window", ceiling_at_chance=False)))
    assert "The SHAP floor lies inside the scan floor's 95% interval" in text
    assert "The SHAP ceiling lies outside the scan ceiling's 95% interval" in text
    assert "per-patient views" in text  # only aggregate SHAP views in the shared report


def test_composite_folder_has_no_sides_section_and_no_dead_links(tmp_path):
    b = RunBundle(tmp_path / "c")
    b.write_json(RunBundle.MANIFEST, {"run_name": "c", "experiment": "x", "status": "FINISHED"})
    html = render_report(b)
    assert "id='sides'" not in html and "href='#sides'" not in html
    assert "href='#transport'" not in html  # no transport step: no link to it


def test_incidence_table_is_holm_adjusted():
    from ml.report._html import _holm

    # Holm (1979): sorted p (0.01, 0.02, 0.04) times (3, 2, 1), made monotone
    assert _holm([0.04, None, 0.01, 0.02]) == pytest.approx([0.04, None, 0.03, 0.04], abs=1e-12)
    assert _holm([0.5, 0.6]) == [1.0, 1.0]  # 2 * 0.5, then max(1.0, 0.6)


def test_endpoint_labels_are_clinical():
    assert endpoint_label("agvhd2") == "acute GVHD grade II-IV"
    assert endpoint_label("cmv|ebv") == "CMV or EBV reactivation"
    assert endpoint_label(("cmv", "nrm")) == "CMV reactivation or non-relapse mortality"


def test_incidence_bands_and_numbers_at_risk_match_the_window_estimator():
    import numpy as np

    from ml.experiments._steps import at_risk_table, incidence_curves
    from ml.features import check_competing_target, competing_target
    from ml.report import figures as F
    from ml.sim import simulate_cohort
    from ml.window import incidence_at

    cohort = simulate_cohort("urd", n=150, seed=4)
    rng = np.random.default_rng(0)
    x = rng.uniform(50, 200, len(cohort.outcomes))
    curves = incidence_curves(x, cohort.outcomes, 100.0, 150.0, ["agvhd2"])
    codes, time = check_competing_target(competing_target(cohort.outcomes, "agvhd2"))
    for group, mask in (("below", x < 100), ("inside", (x >= 100) & (x < 150)), ("above", x >= 150)):
        c = curves[curves["group"] == group]
        # at day 180 the step curve and its band are incidence_at's estimate and log(-log) interval
        ref = incidence_at(time[mask], codes[mask], 180.0)
        k = np.searchsorted(c["time"].to_numpy(), 180.0, side="right") - 1
        np.testing.assert_allclose(c[["incidence", "ci_low", "ci_high"]].to_numpy()[k],
                                   [ref["incidence"], ref["ci_low"], ref["ci_high"]], atol=1e-12)
        assert (c["ci_low"] <= c["incidence"] + 1e-12).all() and (c["incidence"] <= c["ci_high"] + 1e-12).all()
    table = at_risk_table(x, cohort.outcomes, 100.0, 150.0, "agvhd2", [0.0, 90.0, 180.0])
    below = table[table["group"] == "below"].set_index("time")["at_risk"]
    assert below[0.0] == int((x < 100).sum())
    assert below[90.0] == int(((x < 100) & (time >= 90.0)).sum())  # still event-free and followed
    fig = F.side_incidence_figure(curves, table, title="acute GVHD grade II-IV", horizon=180.0, lower=100.0,
                                  upper=150.0)
    shown = {t.get_text() for t in fig.axes[1].texts}
    assert str(int(below[90.0])) in shown  # the numbers at risk are printed under the curves


def test_side_profiles_draw_each_statistic_against_its_critical_value():
    import numpy as np
    import pandas as pd

    from ml.report import figures as F

    cut = np.linspace(80.0, 180.0, 21)
    scan = pd.DataFrame({"cut": cut, "z_floor": 3 - np.abs(cut - 110) / 20, "z_ceiling": 3 - np.abs(cut - 140) / 20})
    fig = F.side_profiles_figure(scan, critical={"floor": 2.4, "ceiling": 2.6}, floor=110.0, ceiling=140.0,
                                 evidenced={"floor": True, "ceiling": False})
    top, bottom = fig.axes[:2]
    assert np.allclose(top.lines[0].get_ydata(), scan["z_floor"]) and np.allclose(bottom.lines[0].get_ydata(),
                                                                                     scan["z_ceiling"])
    assert any(np.allclose(line.get_ydata(), 2.4) for line in top.lines)
    assert any(np.allclose(line.get_ydata(), 2.6) for line in bottom.lines)
    assert any("not evidenced" in t.get_text() for t in bottom.get_legend().get_texts())
