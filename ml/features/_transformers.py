"""Feature frames and preprocessors: patients' covariates plus ATG exposure -> X.

Two steps, kept apart so that the experiment file decides which features enter:

1. :func:`feature_frame` joins a cohort's patients table with the per-patient exposure table
   (``ml.pk.exposure_table``: ``auc_pre``, ``auc_post``, ``auc_total`` in UE*day/mL) and adds
   derived covariates (``cmv_serostatus``). One row per patient, in the order of
   ``cohort.outcomes`` so that the endpoint builders' targets align row by row.
2. :func:`make_preprocessor` builds a :class:`~sklearn.compose.ColumnTransformer` over the named
   features: numeric columns pass through (trees) or are median-imputed and standardised (Cox);
   categorical columns are one-hot encoded with readable names (``sex=M``,
   ``cmv_serostatus=R+/D-``) that SHAP plots show as they are. Exposure columns are never
   scaled, so every downstream curve, SHAP dependence and window stays in UE*day/mL.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.pk import EXPOSURE_COLUMNS  # ("auc_pre", "auc_post", "auc_total"), exposure unit

#: Covariates of the data contract (docs/cohort-format.md, patients.csv).
COVARIATE_COLUMNS = (
    "age_years", "sex", "weight_kg", "diagnosis", "disease_status", "conditioning",
    "hla_mismatches", "cmv_recipient", "cmv_donor", "alc_pre_atg", "donor_type",
)

#: Covariates derived by :func:`add_derived_covariates`.
DERIVED_COLUMNS = ("cmv_serostatus",)

#: A sensible default feature list: total exposure plus the contract's covariates, with the CMV
#: serostatus pair as one four-level factor (the pairing, not each side, drives CMV risk).
DEFAULT_FEATURES = (
    "auc_total", "age_years", "sex", "weight_kg", "diagnosis", "disease_status",
    "conditioning", "hla_mismatches", "cmv_serostatus", "alc_pre_atg",
)


def add_derived_covariates(patients: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``patients`` with derived covariates added.

    Parameters
    ----------
    patients : pandas.DataFrame
        Patients table (contract columns; extra columns are kept).

    Returns
    -------
    pandas.DataFrame
        With ``cmv_serostatus`` in ``{"R+/D+", "R+/D-", "R-/D+", "R-/D-"}`` (recipient/donor
        CMV serostatus, missing when either side is missing) when both ``cmv_recipient`` and
        ``cmv_donor`` are present.
    """
    out = patients.copy()
    if {"cmv_recipient", "cmv_donor"} <= set(out.columns):
        sign = {"pos": "+", "neg": "-"}
        r = out["cmv_recipient"].map(sign)
        d = out["cmv_donor"].map(sign)
        combo = "R" + r + "/D" + d
        out["cmv_serostatus"] = combo.where(r.notna() & d.notna(), None).astype(object)
    return out


def feature_frame(cohort, exposures: pd.DataFrame | None = None) -> pd.DataFrame:
    """Patients' covariates and ATG exposure, one row per patient.

    Parameters
    ----------
    cohort : ml.cohort.Cohort
        A validated cohort.
    exposures : pandas.DataFrame, optional
        Per-patient exposure with ``patient_id`` and any of ``auc_pre``, ``auc_post``,
        ``auc_total`` (UE*day/mL, or the cohort's exposure unit), e.g. from
        ``ml.pk.exposure_table(cohort)``. Its columns replace same-named columns of the
        patients table. When omitted, the patients table must carry ``auc_total`` (cohorts
        without level data).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``patient_id``, rows in the order of ``cohort.outcomes`` (so that
        ``survival_target(cohort.outcomes, ...)`` aligns row by row), with every patients
        column, the exposure columns, and :data:`DERIVED_COLUMNS`.

    Raises
    ------
    ValueError
        When a patient has no exposure row, an exposure row names an unknown patient, a
        patient id is duplicated in ``exposures``, or no ``auc_total`` is available.
    """
    patients = cohort.patients.set_index("patient_id", drop=True)
    if exposures is not None:
        exp = exposures.copy()
        if "patient_id" not in exp.columns:
            raise ValueError("exposures must have a 'patient_id' column, got columns "
                             f"{list(exp.columns)}")
        dup = exp["patient_id"][exp["patient_id"].duplicated()].unique().tolist()
        if dup:
            raise ValueError(f"exposures.patient_id must be unique, duplicated: {dup[:5]}")
        exp = exp.set_index("patient_id")
        missing = patients.index.difference(exp.index).tolist()
        if missing:
            raise ValueError(f"every patient needs an exposure row; {len(missing)} missing, "
                             f"e.g. {missing[:5]}")
        extra = exp.index.difference(patients.index).tolist()
        if extra:
            raise ValueError(f"exposures name {len(extra)} patient(s) not in the cohort, "
                             f"e.g. {extra[:5]}")
        patients = patients.drop(columns=[c for c in exp.columns if c in patients.columns])
        patients = patients.join(exp, how="left")
    if "auc_total" not in patients.columns or patients["auc_total"].isna().all():
        raise ValueError("no exposure: pass exposures=ml.pk.exposure_table(cohort) or use a "
                         "cohort whose patients table carries auc_total")
    order = pd.Index(cohort.outcomes["patient_id"]) if cohort.outcomes is not None else None
    if order is not None and len(order) == len(patients) and set(order) == set(patients.index):
        patients = patients.loc[order]
    frame = add_derived_covariates(patients)
    frame.index.name = "patient_id"
    return frame


class _Columns:
    """Column selector for :class:`~sklearn.compose.ColumnTransformer` (picklable callable).

    Picks, among ``features`` and in their order, the columns of one kind: ``"exposure"``
    (named in ``exposure``), ``"numeric"`` (other numeric dtypes) or ``"categorical"``
    (object, string, category, bool). A feature missing from the frame is an error naming it.
    """

    def __init__(self, features: Sequence[str], kind: str, exposure: Sequence[str]):
        self.features = tuple(features)
        self.kind = kind
        self.exposure = tuple(exposure)

    def __call__(self, X: pd.DataFrame) -> list[str]:
        missing = [f for f in self.features if f not in X.columns]
        if missing:
            raise ValueError(f"feature(s) {missing} named in the experiment are not columns of "
                             f"the feature frame; available: {sorted(map(str, X.columns))}")
        out = []
        for f in self.features:
            is_num = (pd.api.types.is_numeric_dtype(X[f])
                      and not pd.api.types.is_bool_dtype(X[f]))
            kind = "exposure" if f in self.exposure else ("numeric" if is_num else "categorical")
            if kind == self.kind:
                out.append(f)
        return out


def _one_hot_name(feature: str, category) -> str:
    return f"{feature}={category}"


def make_preprocessor(
    features: Sequence[str],
    *,
    scale_numeric: bool = False,
    drop_first: bool = False,
    min_frequency: int | float | None = None,
    exposure_columns: Sequence[str] = EXPOSURE_COLUMNS,
) -> ColumnTransformer:
    """Column transformer from a feature frame to a numeric matrix with readable names.

    Parameters
    ----------
    features : list of str
        Columns of the feature frame that enter the model (from the experiment file). Numeric
        versus categorical is decided by dtype at fit time, so extra contract columns work.
    scale_numeric : bool, default False
        False for trees (numeric covariates pass through, missing values stay NaN for
        XGBoost's default directions). True for Cox models: numeric covariates are
        median-imputed and standardised. Exposure columns are never scaled or imputed.
    drop_first : bool, default False
        Drop the first level of each categorical (reference coding). Needed for Cox models,
        whose partial likelihood cannot identify a full set of dummies; trees keep all levels.
    min_frequency : int or float, optional
        Levels rarer than this (count, or fraction of rows) are pooled into one
        ``infrequent_sklearn`` level, which keeps small cross-validation folds estimable
        (recommended for Cox models, e.g. 10).
    exposure_columns : sequence of str
        Names treated as exposure (passed through untouched, UE*day/mL).

    Returns
    -------
    sklearn.compose.ColumnTransformer
        Unfitted, with pandas output and feature names such as ``auc_total``, ``age_years``,
        ``sex=M``, ``cmv_serostatus=R+/D-``. Unknown levels at predict time encode as zeros.

    Examples
    --------
    >>> pre = make_preprocessor(["auc_total", "age_years", "cmv_serostatus"])  # doctest: +SKIP
    >>> Xt = pre.fit_transform(feature_frame(cohort, exposure_table(cohort)))  # doctest: +SKIP
    """
    features = list(features)
    if not features:
        raise ValueError("features must name at least one column, got []")
    if len(set(features)) != len(features):
        raise ValueError(f"features must be unique, got {features}")
    numeric = (make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
               if scale_numeric else "passthrough")
    categorical = OneHotEncoder(
        drop="first" if drop_first else None,
        handle_unknown="infrequent_if_exist" if min_frequency is not None else "ignore",
        min_frequency=min_frequency,
        sparse_output=False,
        feature_name_combiner=_one_hot_name,
    )
    ct = ColumnTransformer(
        [
            ("exposure", "passthrough", _Columns(features, "exposure", exposure_columns)),
            ("numeric", numeric, _Columns(features, "numeric", exposure_columns)),
            ("categorical", categorical, _Columns(features, "categorical", exposure_columns)),
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    return ct.set_output(transform="pandas")



def adjustment_covariates(frame: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """Encoded covariates of an adjusted (Cox) analysis, one row per row of ``frame``.

    Numeric columns are median-imputed and standardised, categoricals reference-coded with
    levels rarer than 10 patients pooled: the coding of ``atgwin discover --covariates`` and of
    an experiment's ``[window].covariates``.

    Parameters
    ----------
    frame : pandas.DataFrame
        A :func:`feature_frame`.
    covariates : sequence of str
        Columns of ``frame`` (contract or derived, e.g. ``cmv_serostatus``).

    Raises
    ------
    ValueError
        Naming every covariate ``frame`` lacks and the ones it has.
    """
    covariates = list(covariates)
    missing = [c for c in covariates if c not in frame.columns]
    if missing:
        available = sorted(c for c in frame.columns if c not in EXPOSURE_COLUMNS)
        raise ValueError(f"unknown covariate(s) {missing}; available: {available}")
    pre = make_preprocessor(covariates, scale_numeric=True, drop_first=True, min_frequency=10)
    return pre.fit_transform(frame[covariates]).reset_index(drop=True)
