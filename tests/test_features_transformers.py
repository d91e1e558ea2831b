"""Feature frames and preprocessors (ml.features._transformers).

The cohort is the hand-written factory cohort (tests/cohort_factory.py); exposures are given
by hand so that the expected joins are known exactly.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ml.cohort import load_cohort
from ml.features import (
    DEFAULT_FEATURES,
    add_derived_covariates,
    adjustment_covariates,
    feature_frame,
    make_preprocessor,
)

from cohort_factory import make_cohort

EXPOSURES = pd.DataFrame({
    # deliberately not in the cohort's order
    "patient_id": ["P06", "P03", "P01", "P05", "P02", "P04"],
    "auc_pre": [30.0, 40.0, 50.0, 35.0, 45.0, 55.0],
    "auc_post": [70.0, 90.0, 100.0, 65.0, 60.0, 95.0],
})
EXPOSURES["auc_total"] = EXPOSURES["auc_pre"] + EXPOSURES["auc_post"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return load_cohort(make_cohort(tmp_path_factory.mktemp("cohort") / "c"))


def test_feature_frame_joins_by_patient_in_outcomes_order(cohort):
    frame = feature_frame(cohort, EXPOSURES)
    assert list(frame.index) == list(cohort.outcomes["patient_id"])
    assert frame.loc["P01", "auc_total"] == 150.0
    assert frame.loc["P06", "auc_pre"] == 30.0
    assert frame.loc["P02", "age_years"] == 52
    # contract pairs (P01 pos/pos, P02 pos/neg, P03 neg/pos, P06 neg/neg)
    assert frame["cmv_serostatus"].to_dict() == {
        "P01": "R+/D+", "P02": "R+/D-", "P03": "R-/D+", "P04": "R+/D+", "P05": "R+/D+",
        "P06": "R-/D-",
    }


def test_cmv_serostatus_is_missing_when_a_side_is_missing():
    patients = pd.DataFrame({"cmv_recipient": ["pos", None], "cmv_donor": ["neg", "pos"]})
    out = add_derived_covariates(patients)
    assert out["cmv_serostatus"].iloc[0] == "R+/D-"
    assert pd.isna(out["cmv_serostatus"].iloc[1])


@pytest.mark.parametrize("exposures, message", [
    (EXPOSURES.iloc[1:], "every patient needs an exposure row; 1 missing, e.g. ['P06']"),
    (pd.concat([EXPOSURES, EXPOSURES.iloc[[0]].assign(patient_id="X9")]),
     "exposures name 1 patient(s) not in the cohort, e.g. ['X9']"),
    (pd.concat([EXPOSURES, EXPOSURES.iloc[[0]]]), "exposures.patient_id must be unique, duplicated: ['P06']"),
    (EXPOSURES.drop(columns="patient_id"), "exposures must have a 'patient_id' column"),
    (EXPOSURES.drop(columns="auc_total"), "no exposure: pass exposures=ml.pk.exposure_table(cohort)"),
])
def test_feature_frame_refuses_bad_exposures(cohort, exposures, message):
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        feature_frame(cohort, exposures)
    assert message in str(err.value)


def _frame(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "auc_total": rng.lognormal(np.log(125), 0.3, n),
        "age_years": rng.normal(45, 12, n),
        "weight_kg": np.where(np.arange(n) == 3, np.nan, rng.normal(70, 10, n)),
        "sex": rng.choice(["M", "F"], n),
        "cmv_serostatus": rng.choice(["R+/D+", "R+/D-", "R-/D+", "R-/D-"], n),
    })


def test_tree_preprocessor_passes_numbers_through_with_readable_names():
    X = _frame()
    pre = make_preprocessor(["auc_total", "age_years", "weight_kg", "sex", "cmv_serostatus"])
    Xt = pre.fit_transform(X)
    assert list(Xt.columns) == [
        "auc_total", "age_years", "weight_kg", "sex=F", "sex=M", "cmv_serostatus=R+/D+",
        "cmv_serostatus=R+/D-", "cmv_serostatus=R-/D+", "cmv_serostatus=R-/D-"]
    np.testing.assert_array_equal(Xt["auc_total"], X["auc_total"])
    assert np.isnan(Xt["weight_kg"].iloc[3])  # XGBoost learns a default direction
    np.testing.assert_array_equal(Xt["sex=M"], (X["sex"] == "M").astype(float))
    # an unseen level encodes as all zeros
    new = X.iloc[:1].assign(cmv_serostatus="unknown")
    assert pre.transform(new).filter(like="cmv_serostatus").to_numpy().sum() == 0


def test_cox_preprocessor_scales_covariates_but_not_exposure_and_drops_first_level():
    X = _frame()
    pre = make_preprocessor(["auc_total", "age_years", "weight_kg", "sex"],
                            scale_numeric=True, drop_first=True)
    Xt = pre.fit_transform(X)
    assert list(Xt.columns) == ["auc_total", "age_years", "weight_kg", "sex=M"]
    np.testing.assert_array_equal(Xt["auc_total"], X["auc_total"])  # UE*day/mL kept
    np.testing.assert_allclose(Xt["age_years"].mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(Xt["age_years"].std(ddof=0), 1.0)
    assert not Xt["weight_kg"].isna().any()  # median-imputed


def test_preprocessor_clones_and_names_a_missing_feature():
    pre = clone(make_preprocessor(["auc_total", "ferritin"]))
    with pytest.raises(ValueError, match=r"feature\(s\) \['ferritin'\] named in the experiment"):
        pre.fit(_frame())


@pytest.mark.parametrize("features, message", [
    ([], "features must name at least one column"),
    (["age_years", "age_years"], "features must be unique"),
])
def test_preprocessor_refuses_bad_feature_lists(features, message):
    with pytest.raises(ValueError, match=message):
        make_preprocessor(features)


def test_default_features_exist_in_a_feature_frame(cohort):
    frame = feature_frame(cohort, EXPOSURES)
    Xt = make_preprocessor(DEFAULT_FEATURES).fit_transform(frame)
    assert "auc_total" in Xt.columns and "cmv_serostatus=R-/D-" in Xt.columns


def test_adjustment_covariates_code_like_a_cox_model_and_name_unknown_columns():
    X = _frame(n=60).set_index(pd.RangeIndex(100, 160))
    Z = adjustment_covariates(X, ["age_years", "sex"])
    assert list(Z.columns) == ["age_years", "sex=M"] and list(Z.index) == list(range(60))
    np.testing.assert_allclose(Z["age_years"].std(ddof=0), 1.0)
    with pytest.raises(ValueError, match=r"unknown covariate\(s\) \['hla'\]; available: \['age_years'"):
        adjustment_covariates(X, ["age_years", "hla"])
