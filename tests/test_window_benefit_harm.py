"""The benefit-harm search: side statistics against the maxstat-validated scan and direct sums, the
joint permutation null against re-scanning permuted data, the closed test's findings on worlds with
a known truth, the artefact and the ``discover`` entry point.

References: the standardised linear rank statistic of Lausen & Schumacher (1992), as R maxstat
computes it (tests/test_window_reference.py holds ``scan`` to maxstat); a floor statistic is the
*negated* statistic of the window below the cut (excess harm below), a ceiling statistic the
statistic of the window below the cut (excess harm above), both written out here patient by
patient.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.sim import simulate_cohort
from ml.window import BenefitHarmSearch, ExposureWindow, discover, logrank_scores, promote_window, scan
from ml.window._promotion import PromotionGates
from ml.window._sides import admissible_pairs, min_p_value, side_permutation_maxima, side_scan

QUICK = dict(n_permutations=199, n_bootstraps=40, n_folds=3)


def _scores(n, seed):
    rng = np.random.default_rng(seed)
    t = rng.exponential(100, (n, 2))
    e = rng.random((n, 2)) < 0.6
    return np.column_stack([logrank_scores(t[:, k], e[:, k]) for k in range(2)])


def _direct(s, c, direction):
    """Standardised statistic of the c lowest-exposure patients, from its definition."""
    n = s.size
    below = s[:c].sum()
    var = c * (n - c) / (n**2 * (n - 1)) * (n * np.sum(s**2) - s.sum() ** 2)
    return direction * (below - c * s.mean()) / np.sqrt(var)


def test_side_statistics_match_their_definition_and_the_maxstat_scan():
    s = _scores(150, 0)
    positions = np.arange(15, 136, 5)
    res = side_scan(s, positions, min_group=15)
    for k, c in enumerate(positions):
        assert res.z_floor[k] == pytest.approx(_direct(s[:, 0], c, +1.0), rel=1e-12)
        assert res.z_ceiling[k] == pytest.approx(_direct(s[:, 1], c, -1.0), rel=1e-12)
    # the maxstat-validated single-cut scan: its window below the cut has statistic -z_floor
    single = scan(s[:, 0], positions, 15, single_cut=True)
    below = single.a == 0
    np.testing.assert_allclose(single.z[below], -res.z_floor, rtol=1e-12)
    # joint = floor + ceiling over every admissible pair, and only those
    i, j = admissible_pairs(positions, 150, 15)
    np.testing.assert_allclose(res.joint, res.z_floor[i] + res.z_ceiling[j])
    assert all(positions[a] < positions[b] and positions[b] - positions[a] >= 15 for a, b in zip(i, j))


def test_permutation_maxima_are_the_maxima_of_rescanned_permuted_data():
    s = _scores(120, 1)
    positions = np.arange(12, 109, 8)
    res = side_scan(s, positions, min_group=12)
    got = side_permutation_maxima(s, res, 25, np.random.default_rng(5), block_elements=120 * 7)
    rng = np.random.default_rng(5)  # blocks of 7 permutations, drawn as the function draws them
    done, expected = 0, []
    while done < 25:
        size = min(7, 25 - done)
        orders = rng.permuted(np.tile(np.arange(120), (size, 1)), axis=1)
        for o in orders:
            p = side_scan(s[o], positions, 12)
            expected.append((p.joint.max(), p.z_floor.max(), p.z_ceiling.max()))
        done += size
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-10)


@pytest.fixture(scope="module")
def urd():
    from ml.pk import exposure_table

    cohort = simulate_cohort("urd", n=324, seed=1003)
    return cohort, exposure_table(cohort, method="map")


def _x(cohort, table):
    from ml.features import feature_frame

    return feature_frame(cohort, table[["patient_id", "auc_total"]])["auc_total"].to_numpy()


def _without_exposure_effect(outcomes: pd.DataFrame, columns, seed: int) -> pd.DataFrame:
    """The same outcomes with ``columns`` shuffled across patients: their link to exposure is gone."""
    out = outcomes.copy()
    perm = np.random.default_rng(seed).permutation(len(out))
    for c in columns:
        out[c] = outcomes[c].to_numpy()[perm]
    return out


def test_min_p_of_one_statistic_is_its_plain_permutation_p_value():
    """With one column the min-p is the permutation p-value (1 + #{null >= observed}) / (1 + B)."""
    rng = np.random.default_rng(0)
    null = rng.normal(size=(999, 1))
    for observed in (-1.0, 0.3, 1.7, 2.5, 10.0):
        expected = (1 + np.sum(null[:, 0] >= observed)) / 1000
        assert min_p_value(null, np.array([observed])) == pytest.approx(expected)


def test_min_p_keeps_the_level_when_the_observed_data_are_one_more_permutation():
    """Exchangeable rows (the permutation null): P(p <= alpha) is at most alpha, up to Monte Carlo error.

    Three correlated statistics on different scales, as the joint, floor and ceiling maxima are;
    the observed row is drawn from the same law as the permutation rows, so under the null the
    p-value is (super-)uniform on the grid k / (B + 1) (Westfall & Young 1993, ch. 2).
    """
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.7, 0.7], [0.7, 1.0, 0.0], [0.7, 0.0, 1.0]])
    scale = np.array([2.0, 1.0, 0.5])
    reps, b = 1500, 199
    rows = rng.multivariate_normal(np.zeros(3), cov, size=(reps, b + 1)) * scale
    p = np.array([min_p_value(r[1:], r[0]) for r in rows])
    for alpha in (0.05, 0.1, 0.2):
        rate = np.mean(p <= alpha)
        assert rate <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / reps), (alpha, rate)
        assert rate >= alpha - 3 * np.sqrt(alpha * (1 - alpha) / reps) - 1 / (b + 1), (alpha, rate)


def test_min_p_rejects_when_one_statistic_alone_carries_the_signal():
    """One of three statistics far out in its tail: the min-p rejects, a sum diluted by the others
    need not. Compared with the Bonferroni bound 3 * min p (the min-p is never above it)."""
    rng = np.random.default_rng(2)
    null = rng.normal(size=(999, 3))
    observed = np.array([0.0, 3.5, 0.0])
    p = min_p_value(null, observed)
    single = (1 + np.sum(null >= observed, axis=0)) / 1000
    assert p < 0.05 and p <= 3 * single.min() + 1e-12


def test_the_global_test_can_be_the_joint_statistic_alone(urd):
    cohort, table = urd
    kw = dict(random_state=0, n_permutations=199, n_bootstraps=0, n_folds=0, estimate="argmax", ci_method="percentile")
    joint = BenefitHarmSearch(global_test="joint", **kw).fit(_x(cohort, table), cohort.outcomes)
    expected = (1 + np.sum(joint.null_statistics_[:, 0] >= joint.statistic_ - 1e-9)) / 200
    assert joint.p_value_ == pytest.approx(expected)
    with pytest.raises(ValueError, match="global_test"):
        BenefitHarmSearch(global_test="sum", **kw).fit(_x(cohort, table), cohort.outcomes)


def test_a_world_with_both_harms_gives_a_window_near_the_truth(urd):
    cohort, table = urd
    s = BenefitHarmSearch(random_state=0, **QUICK).fit(_x(cohort, table), cohort.outcomes)
    assert s.finding_ == "window" and s.p_value_ < 0.05
    assert s.floor_.evidenced and s.ceiling_.evidenced
    truth = cohort.meta.truth
    assert abs(s.lower_ - truth["lower"]) < 25 and abs(s.upper_ - truth["upper"]) < 25
    assert s.lower_ci_[0] <= s.lower_ <= s.lower_ci_[1] and s.upper_ci_[0] <= s.upper_ <= s.upper_ci_[1]
    # each side's cross-fitted effect points the way its hypothesis says
    assert s.effect_["floor"]["hr"] > 1 and s.effect_["ceiling"]["hr"] > 1
    # the same seed gives the same numbers
    again = BenefitHarmSearch(random_state=0, **QUICK).fit(_x(cohort, table), cohort.outcomes)
    assert (again.lower_, again.upper_, again.p_value_) == (s.lower_, s.upper_, s.p_value_)


def test_a_world_without_the_over_exposure_harm_gives_a_floor_only(urd):
    cohort, table = urd
    outcomes = _without_exposure_effect(cohort.outcomes, ["cmv_day", "ebv_day"], seed=3)
    s = BenefitHarmSearch(random_state=0, **QUICK).fit(_x(cohort, table), outcomes)
    assert s.finding_ == "floor-only", s.summary()
    assert np.isfinite(s.lower_) and np.isposinf(s.upper_) and not s.ceiling_.evidenced


def test_a_world_without_any_exposure_effect_gives_no_window(urd):
    cohort, table = urd
    outcomes = _without_exposure_effect(cohort.outcomes, ["cmv_day", "ebv_day", "agvhd2_day"], seed=4)
    s = BenefitHarmSearch(random_state=0, **QUICK).fit(_x(cohort, table), outcomes)
    assert s.finding_ == "no-window" and s.p_value_ >= 0.05


def test_harms_that_overlap_are_a_finding_not_an_error():
    """GVHD rises below 135 and CMV/EBV above 110: no exposure avoids both (a constructed world)."""
    rng = np.random.default_rng(7)
    n = 600
    x = rng.lognormal(np.log(120), 0.25, n)
    outcomes = pd.DataFrame({"patient_id": [f"P{i}" for i in range(n)], "last_followup_day": 365.0})
    for col, harmed, base in (("agvhd2_day", x < 135, 0.002), ("cmv_day", x >= 110, 0.004)):
        t = rng.exponential(1 / (base * np.where(harmed, 3.0, 1.0)))
        outcomes[col] = np.where(t < 365, t, np.nan)
    for col in ("ebv_day", "death_day", "relapse_day"):
        outcomes[col] = np.nan
    s = BenefitHarmSearch("agvhd2", floor_horizon=180.0, random_state=0, **QUICK).fit(x, outcomes)
    assert s.finding_ == "overlap", s.summary()
    assert s.floor_.evidenced and s.ceiling_.evidenced
    assert np.isneginf(s.lower_) and np.isposinf(s.upper_)


def test_too_few_events_on_a_side_names_the_side(urd):
    cohort, table = urd
    with pytest.raises(ValueError, match="too few events on the floor side: .* events of 'agvhd3'"):
        BenefitHarmSearch("agvhd3", floor_horizon=5, **QUICK).fit(_x(cohort, table), cohort.outcomes)


def test_discover_writes_a_benefit_harm_artefact_that_round_trips(urd, tmp_path):
    cohort, table = urd
    found = discover(cohort, table, search=BenefitHarmSearch(random_state=0, **QUICK),
                     pk_model={"name": "shipped prior", "digest": "abc", "source": "shipped"})
    w = found.window
    assert w.search_kind == "benefit-harm" and w.finding == "window" and w.status == "candidate"
    assert (w.floor.endpoints, w.ceiling.endpoints) == (("agvhd2", "cgvhd"), ("cmv", "ebv"))
    assert w.floor.p_value < 0.05 and w.ceiling.p_value < 0.05 and w.floor.effect.hr > 1
    assert w.lower_ci is not None and w.upper_ci is not None and w.pk_model["digest"] == "abc"
    assert {i.outcome for i in found.incidences} >= {"cmv", "agvhd2"}
    path = tmp_path / "w.json"
    w.to_json(path)
    assert ExposureWindow.from_json(path) == w
    data = json.loads(path.read_text())
    assert data["schema_version"] == 2 and data["floor"]["side"] == "floor"
    # the same cohort through the composite search, on demand
    comp = discover(cohort, table, endpoint="cmv|ebv|agvhd2|death",
                    search=None).window
    assert comp.search_kind == "composite" and comp.floor is None


def test_schema_1_files_are_read_and_upgraded(urd, tmp_path):
    cohort, table = urd
    w = discover(cohort, table, endpoint="cmv", search=None).window
    old = w.to_dict()
    for key in ("finding", "search_kind", "floor", "ceiling", "pk_model"):
        old.pop(key)
    old["schema_version"] = 1
    up = ExposureWindow.from_dict(old)
    assert up.schema_version == 2 and up.search_kind == "composite"
    expected = ("no-window" if w.status == "no-window" else "window" if None not in (w.lower, w.upper)
                else "ceiling-only" if w.lower is None else "floor-only")
    assert up.finding == expected == w.finding


def test_only_a_two_sided_window_can_be_promoted(urd):
    cohort, table = urd
    outcomes = _without_exposure_effect(cohort.outcomes, ["cmv_day", "ebv_day"], seed=3)
    from dataclasses import replace

    one_sided = discover(replace(cohort, outcomes=outcomes), table, search=BenefitHarmSearch(random_state=0, **QUICK))
    w = one_sided.window
    assert w.finding == "floor-only" and w.status == "candidate" and w.upper is None
    with pytest.raises(ValueError, match="upper bound is finite") as err:
        promote_window(w, PromotionGates(max_ci_width=1000), by="tester", reason="test")
    assert "upper bound is finite (it is open" in str(err.value)
    assert "finding is 'window', both bounds evidenced (got 'floor-only')" in str(err.value)


def test_infinitesimal_jackknife_of_a_bagged_mean_is_the_plug_in_standard_error():
    """Closed form (Efron 2014, section 3): for the mean, the bootstrap-smoothed estimate is the mean
    itself and its infinitesimal-jackknife variance is sum((x - xbar)^2) / n^2."""
    from ml.window._bootstrap import infinitesimal_jackknife_sd

    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 0.5, 60)
    B = 6000
    counts = rng.multinomial(60, np.full(60, 1 / 60), size=B).astype(float)
    t = counts @ x / 60
    expected = np.sqrt(np.sum((x - x.mean()) ** 2)) / 60
    assert infinitesimal_jackknife_sd(t, counts) == pytest.approx(expected, rel=0.05)
    t[:10] = np.nan  # resamples without a result are left out
    assert infinitesimal_jackknife_sd(t, counts) == pytest.approx(expected, rel=0.05)
