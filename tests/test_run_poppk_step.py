"""The population PK step of ``atgwin run`` (ml.experiments._pk): which model, and the fallback.

The fit itself is tested in tests/test_poppk_fit.py; here: a fit that raises and a fit that does
not converge both fall back to the shipped model with a recorded warning (never quietly), a named
model is used without fitting, NCA uses none, and the convergence criteria read the fit's own
standard errors and SAEM trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pytest

from ml.experiments import parse_experiment
from ml.experiments._pk import MODEL_FILE, check_pk_fit, population_model
from ml.pk import PopPKModel
from ml.sim import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    return simulate_cohort("urd", n=60, seed=3)


def _experiment(features: str = "", poppk: str = ""):
    return parse_experiment(f'name = "pk"\n[features]\n{features}\n[poppk]\n{poppk}\n')


class _Raises:
    def fit(self, cohort):
        raise np.linalg.LinAlgError("singular matrix in the M-step")


@dataclass
class _Result:
    typical: dict
    omega: dict
    residual: dict
    se_: dict

    def rse(self):
        flat = {**{f"typical.{k}": v for k, v in self.typical.items()}, **{f"omega.{k}": v for k, v in self.omega.items()}}
        return {k: 100 * s / flat[k] for k, s in self.se_.items()}


@dataclass
class _Trace:
    theta: np.ndarray
    n_explore: int


class _Fitted:
    """A fitted PopPKFit as check_pk_fit reads it (result_, trace_)."""

    def __init__(self, rse_cl=10.0, drift=0.0, n_explore=40):
        m = PopPKModel.default()
        se = {f"typical.{p}": 0.1 * v for p, v in m.typical.items() if p in ("CL", "V1", "Q", "V2")}
        se["typical.CL"] = rse_cl / 100 * m.typical["CL"]
        se.update({f"omega.{p}": 0.1 * w for p, w in m.iiv.items()})
        self.result_ = _Result(dict(m.typical), dict(m.iiv), dict(m.residual), se)
        theta = np.tile([m.typical[p] for p in ("CL", "V1", "Q", "V2", "Vmax", "Km")], (n_explore + 10, 1))
        theta[n_explore - n_explore // 4:n_explore, 0] *= 1 + drift  # CL moves in the last quarter
        self.trace_ = _Trace(theta, n_explore)


def test_a_failing_fit_falls_back_to_the_shipped_model_with_a_warning(cohort):
    pk = population_model(cohort, _experiment().features, _experiment().poppk, estimator=_Raises())
    assert pk.status == "fallback" and pk.model.digest == PopPKModel.default().digest
    assert pk.record == {"name": "atg-2cmt-linear-mm", "digest": PopPKModel.default().digest, "source": "shipped"}
    (warning,) = pk.warnings
    assert "population PK fit failed" in warning and "LinAlgError" in warning and "shipped" in warning
    assert pk.summary()["status"] == "fallback" and pk.summary()["warnings"] == [warning]


def test_a_non_converged_fit_falls_back_and_says_why(cohort, monkeypatch):
    from ml.poppk import PopPKFit

    def fake_fit(self, data):
        fitted = _Fitted(rse_cl=80.0)
        self.result_, self.trace_ = fitted.result_, fitted.trace_
        self.model_ = PopPKModel.default().with_typical(CL=0.9)
        return self

    monkeypatch.setattr(PopPKFit, "fit", fake_fit)
    e = _experiment(poppk="max_rse = 50.0")
    pk = population_model(cohort, e.features, e.poppk)
    assert pk.status == "fallback" and pk.model.digest == PopPKModel.default().digest
    assert "did not converge" in pk.warnings[0] and "typical.CL 80 %" in pk.warnings[0]
    assert pk.check is not None and not pk.check.converged


def test_convergence_criteria():
    assert check_pk_fit(_Fitted()).converged
    bad = check_pk_fit(_Fitted(rse_cl=60.0), max_rse=50.0)
    assert not bad.converged and "typical.CL 60 %" in bad.problems[0]
    moving = check_pk_fit(_Fitted(drift=0.3), max_drift=0.1)
    assert not moving.converged and "still moving" in moving.problems[0]
    assert math.isclose(moving.drift["CL"], 0.3, rel_tol=1e-9)
    singular = _Fitted()
    singular.result_.se_["omega.V1"] = math.nan
    assert "information matrix is singular" in check_pk_fit(singular).problems[0]


def test_a_named_model_is_used_without_fitting_and_nca_uses_none(cohort, tmp_path):
    path = tmp_path / "m.toml"
    given = PopPKModel.default().with_typical(CL=0.7)
    given.to_toml(path)
    e = _experiment(f'pk_model = "{path}"')
    pk = population_model(cohort, e.features, e.poppk, estimator=_Raises())
    assert pk.status == "given" and pk.model.digest == given.digest and pk.source == MODEL_FILE
    e = _experiment('pk_model = "shipped"')
    assert population_model(cohort, e.features, e.poppk, estimator=_Raises()).status == "shipped"
    e = _experiment('exposure_method = "nca"')
    pk = population_model(cohort, e.features, e.poppk, estimator=_Raises())
    assert pk.status == "not used" and pk.model is None and pk.record is None


def test_a_converged_fit_is_used_and_named_after_the_cohort(cohort):
    e = _experiment(poppk="n_explore = 40\nn_smooth = 10\nmax_drift = 1.0\nmax_rse = 1000.0")
    pk = population_model(cohort, e.features, e.poppk, random_state=0)
    assert pk.status == "fitted", pk.warnings
    assert pk.model.status == "fitted" and cohort.meta.name in pk.model.name
    assert pk.record["source"] == MODEL_FILE and pk.record["digest"] == pk.model.digest
    assert pk.model.digest != PopPKModel.default().digest
    s = pk.summary()
    assert s["converged"] and "typical.CL" in s["fit"]["rse_percent"] and "CL" in s["fit"]["shrinkage"]
    assert replace(pk.model, name="x").digest == pk.model.digest
