"""The XGBoost hyper-parameters of both boosted models come from one list (ml/models/_xgb_survival.py)."""

from __future__ import annotations

from ml.models import XGBSurvival
from ml.models._classifier import XGBEventClassifier
from ml.models._xgb_survival import _BOOSTER_PARAMS, booster_params

TREE = {"learning_rate": 0.1, "max_depth": 3, "min_child_weight": 2.0, "subsample": 0.7,
        "colsample_bytree": 0.6, "reg_lambda": 2.0, "reg_alpha": 0.5, "max_bin": 32, "n_jobs": 1}


def test_both_models_pass_the_same_tree_parameters():
    surv = booster_params(XGBSurvival(**TREE), "survival:cox", 7)
    clf = booster_params(XGBEventClassifier(**TREE), "binary:logistic", 7)
    assert surv.pop("objective") == "survival:cox" and clf.pop("objective") == "binary:logistic"
    assert surv.pop("gamma") == 0.0          # split-gain regularisation: only the survival model has it
    assert surv == clf == {"eta": 0.1, "max_depth": 3, "min_child_weight": 2.0, "subsample": 0.7,
                           "colsample_bytree": 0.6, "lambda": 2.0, "alpha": 0.5, "tree_method": "hist",
                           "max_bin": 32, "nthread": 1, "seed": 7, "verbosity": 0}


def test_every_listed_parameter_is_an_estimator_parameter():
    for est in (XGBSurvival(), XGBEventClassifier()):
        names = est.get_params()
        assert all(name in names for name, _ in _BOOSTER_PARAMS if hasattr(est, name))
        assert {name for name, _ in _BOOSTER_PARAMS} - set(names) <= {"gamma"}
