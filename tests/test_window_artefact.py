"""ExposureWindow: validation messages, JSON round trip, dosing mapping, gate-checked promotion."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest

from ml.features import SURVIVAL_DTYPE
from ml.window import (
    Effect,
    ExposureWindow,
    Incidence,
    Population,
    PromotionError,
    PromotionGates,
    WindowSearch,
    exposure_window,
    promote_window,
)


def make(**overrides) -> ExposureWindow:
    base = dict(
        exposure="auc_total", exposure_definition="total active-ATG AUC", unit="UE*day/mL",
        population=Population("URD", "MAC", 324, 210), endpoint="cmv|ebv|agvhd2|death", horizon_days=180.0,
        lower=100.0, upper=148.5, target=124.25, lower_ci=(92.0, 110.0), upper_ci=(140.0, 160.0),
        ci_method="bootstrap percentile", p_value=0.004, p_value_method="permutation", statistic=3.9,
        dataset_digest="abc123", simulated=True, code_version="atg-window 0.1.0",
        effect=Effect(0.62, 0.48, 0.80, "cross-fitted Cox, 5 folds", 0.001, 150, 174, 80, 130),
        incidences=(Incidence("cmv", "inside", 180.0, 150, 90, 0.6, 0.52, 0.68),
                    Incidence("cmv", "outside", 180.0, 174, 134, 0.77, 0.7, 0.83, 0.004)),
    )
    base.update(overrides)
    return ExposureWindow(**base)


def test_json_round_trip_string_and_file(tmp_path):
    w = make()
    assert ExposureWindow.from_json(w.to_json()) == w
    path = tmp_path / "w.json"
    w.to_json(path)
    assert ExposureWindow.from_json(path) == w
    assert ExposureWindow.from_json(str(path)) == w
    data = json.loads(path.read_text())
    for key in ("lower", "upper", "target", "lower_ci", "upper_ci", "p_value", "statistic", "unit", "endpoint",
                "horizon_days", "status", "dataset_digest", "simulated", "code_version", "created_at",
                "schema_version", "population", "effect", "incidences", "gates_passed"):
        assert key in data


def test_open_bounds_are_null_in_json():
    w = make(lower=None, lower_ci=None, target=120.0, upper_ci=(140.0, None))
    d = json.loads(w.to_json())
    assert d["lower"] is None and d["upper_ci"] == [140.0, None]
    assert (w.lower, w.upper, w.target, w.unit) == (None, 148.5, 120.0, "UE*day/mL")
    assert w.contains(5.0) and not w.contains(148.5)


@pytest.mark.parametrize("overrides, message", [
    (dict(lower=150.0, upper=100.0, target=120.0), "`lower < upper` must hold, got lower=150.0, upper=100.0"),
    (dict(target=160.0), "`lower <= target < upper` must hold, got lower=100.0, target=160.0, upper=148.5"),
    (dict(lower=None, upper=None), "at least one of `lower`, `upper` must be given, got both None"),
    (dict(lower=float("nan")), "`lower` must be a finite number or None (open), got lower=nan"),
    (dict(unit=""), "`unit` must be a non-empty string, got ''"),
    (dict(horizon_days=0.0), "`horizon_days > 0` must hold (or None), got horizon_days=0.0"),
    (dict(p_value=1.5), "`0 <= p_value <= 1` must hold (or None), got p_value=1.5"),
    (dict(lower_ci=(110.0, 92.0)), "`lower_ci[0] <= lower_ci[1]` must hold, got lower_ci=(110.0, 92.0)"),
    (dict(status="approved"), "`status` must be one of ('candidate', 'validated', 'no-window'), got 'approved'"),
    (dict(status="validated"), "a validated window must list `gates_passed`, got none"),
    (dict(simulated="yes"), "`simulated` must be a bool, got 'yes'"),
    (dict(created_at="yesterday"), "`created_at` must be an ISO-8601 time, got 'yesterday'"),
    (dict(schema_version=1), "`schema_version == 2` must hold, got 1"),
    (dict(finding="window", lower=None, lower_ci=None, target=120.0),
     "finding 'window' needs both bounds, got lower=None, upper=148.5"),
    (dict(finding="maybe"), "`finding` must be one of ('window', 'floor-only', 'ceiling-only', 'overlap', "
                            "'no-window'), got 'maybe'"),
    (dict(finding="overlap"), "finding 'overlap' must have status 'no-window', got 'candidate'"),
    (dict(lower=None, lower_ci=None, target=120.0, status="validated", gates_passed=("g",), promoted_by="a",
          promotion_reason="b"), "only a two-sided window (finding 'window') can be validated, got finding 'ceiling-only'"),
    (dict(pk_model={"name": "m"}), "`pk_model` must have text keys name, digest and source; missing or not text: "
                                   "['digest', 'source']"),
])
def test_invalid_windows_state_the_condition(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        make(**overrides)
    assert message in str(err.value)


@pytest.mark.parametrize("factory, message", [
    (lambda: Population("URD", "MAC", 10, 11), "`0 <= population.events <= population.n` must hold, got events=11, n=10"),
    (lambda: Population("URD", "MAC", 0, 0), "`population.n > 0` must hold, got n=0"),
    (lambda: Effect(0.5, 0.6, 0.9, "x"), "`effect.ci_low <= effect.hr <= effect.ci_high` must hold, got 0.6, 0.5, 0.9"),
    (lambda: Incidence("cmv", "middle", 180.0, 1, 1, 0.5, 0.4, 0.6), "`incidence.group` must be below/inside/above/outside"),
])
def test_invalid_parts(factory, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        factory()
    assert message in str(err.value)


def test_from_dict_refuses_unknown_and_missing_keys():
    d = make().to_dict()
    with pytest.raises(ValueError, match=r"unknown ExposureWindow key\(s\) \['colour'\]"):
        ExposureWindow.from_dict({**d, "colour": "red"})
    d.pop("unit")
    with pytest.raises(ValueError, match=r"ExposureWindow is missing key\(s\) \['unit'\]"):
        ExposureWindow.from_dict(d)


def test_frozen():
    with pytest.raises(AttributeError):
        make().lower = 5.0


def test_promotion_passes_and_records_who_and_why():
    v = promote_window(make(), PromotionGates(alpha=0.05, max_ci_width=25.0, min_events=100), by="dr. x",
                       reason="validated on external cohort")
    assert v.status == "validated" and v.promoted_by == "dr. x" and v.promotion_reason
    assert len(v.gates_passed) == 7  # status, finding, p-value, both interval widths, events, run finished
    assert v.gates_passed[-1] == "run finished (the window names no run)"
    assert ExposureWindow.from_json(v.to_json()) == v


def test_promotion_lists_every_failing_gate():
    w = make(p_value=0.2, upper_ci=(140.0, None), population=Population("URD", "MAC", 324, 20))
    with pytest.raises(PromotionError) as err:
        promote_window(w, PromotionGates(alpha=0.05, max_ci_width=15.0, min_events=50), by="x", reason="y")
    failed = err.value.failed
    assert failed == [
        "adjusted p-value 0.2 < alpha 0.05",
        "lower bound interval width 18 <= 15.0 UE*day/mL",
        "upper bound interval width <= 15.0 UE*day/mL (interval unbounded: [140.0, +inf])",
        "events 20 >= min_events 50",
    ]


def test_an_open_bound_fails_promotion_whatever_the_width_gate():
    w = make(lower=None, lower_ci=None, target=120.0)
    with pytest.raises(PromotionError) as err:
        promote_window(w, PromotionGates(max_ci_width=1000.0, min_events=1), by="x", reason="y")
    assert err.value.failed == [
        "finding is 'window', both bounds evidenced (got 'ceiling-only')",
        "lower bound is finite (it is open: a window is safe to dose only with both bounds)",
    ]


@pytest.mark.parametrize("status", ["no-window", "validated"])
def test_only_candidates_are_promoted(status):
    w = make(status=status, gates_passed=("x",), promoted_by="a", promotion_reason="b")
    with pytest.raises(PromotionError, match=f"status is 'candidate' \\(got '{status}'\\)"):
        promote_window(w, PromotionGates(max_ci_width=100.0, min_events=1), by="x", reason="y")


def test_promotion_needs_a_name_and_a_reason():
    with pytest.raises(ValueError, match="`by` must name who promotes"):
        promote_window(make(), PromotionGates(), by=" ", reason="y")


def test_exposure_window_from_a_fitted_search():
    rng = np.random.default_rng(0)
    x = rng.lognormal(np.log(125), 0.3, 400)
    rate = 0.01 * np.where((x >= 100) & (x < 150), 1.0, 3.0)
    t, c = rng.exponential(1 / rate), rng.uniform(30, 200, 400)
    y = np.empty(400, dtype=SURVIVAL_DTYPE)
    y["time"], y["event"] = np.minimum(t, c), t <= c
    s = WindowSearch(n_permutations=99, n_bootstraps=30, n_folds=3, random_state=0).fit(x, y)
    w = exposure_window(s, unit="UE*day/mL", endpoint="cmv", horizon_days=180, population=Population("URD", "MAC", s.n_, s.n_events_),
                        dataset_digest="d", simulated=True, version="test")
    assert w.status == "candidate" and w.p_value == pytest.approx(0.01)
    assert (w.lower, w.upper) == (pytest.approx(s.lower_), pytest.approx(s.upper_))
    assert w.effect.hr == pytest.approx(s.effect_["hr"])
    assert ExposureWindow.from_json(w.to_json()) == w
    w_strict = exposure_window(s, unit="UE*day/mL", endpoint="cmv", horizon_days=180,
                               population=Population("URD", "MAC", s.n_, s.n_events_), dataset_digest="d",
                               simulated=True, version="test", alpha=0.005)
    assert w_strict.status == "no-window"
    assert w_strict.finding == "no-window"
    with pytest.raises(ValueError, match="finding 'no-window' must have status 'no-window', got 'candidate'"):
        replace(w_strict, status="candidate")  # a status edited by hand does not turn a finding into a window


def test_the_origin_is_not_part_of_the_artefact():
    """Where a window was read and how it was checked travel with the object, not in its JSON or digest."""
    from ml.window import WindowOrigin, content_digest

    w = make()
    read = w.with_origin(source="w.json", integrity="signed", model_file="/tmp/m.toml")
    assert read.origin == WindowOrigin("w.json", "signed", "/tmp/m.toml") and w.origin == WindowOrigin()
    assert read == w and read.to_dict() == w.to_dict() and "origin" not in read.to_dict()
    assert content_digest(read.to_dict()) == content_digest(w.to_dict())
    assert ExposureWindow.from_dict(read.to_dict()).origin == WindowOrigin()
    with pytest.raises(ValueError, match=re.escape("unknown ExposureWindow key(s) ['origin']")):
        ExposureWindow.from_dict({**w.to_dict(), "origin": {"source": "forged"}})
    with pytest.raises(ValueError, match=re.escape("invalid WindowOrigin: `integrity` must be one of ('signed', "
                                                   "'registered', 'unsigned', 'in-memory'), got 'trusted'")):
        w.with_origin(integrity="trusted")


def test_a_true_window_is_validated_simulated_and_says_it_is_the_truth():
    from ml.window import true_window

    w = true_window(lower=100.0, upper=148.5, unit="UE*day/mL", world="urd", n=324)
    assert (w.status, w.finding, w.search_kind, w.simulated, w.target) == ("validated", "window", "truth", True, 124.25)
    assert w.lower_ci is None and w.p_value is None and w.population.n == 324
    assert w.provenance == ("the TRUE window of a SIMULATED world (virtual (urd)): known from the simulator, "
                            "not estimated")
    assert ExposureWindow.from_json(w.to_json()) == w
