"""Repeated, event-stratified cross-validation of survival models (scikit-survival metrics).

Per fold: Harrell's C (``concordance_index_censored``), Uno's C (``concordance_index_ipcw``,
truncated at the horizon), the time-dependent cumulative/dynamic AUC averaged over a time grid
(``cumulative_dynamic_auc``'s ``mean_auc``, weighted by the Kaplan-Meier estimate as in
scikit-survival) and the integrated Brier score (``integrated_brier_score``) over the same
grid. Per repeat, from the pooled out-of-fold predictions: calibration at the horizon,
predicted risk ``1 - S(h | x)`` against the Kaplan-Meier risk within deciles of predicted
risk, summarised by the size-weighted mean absolute difference (``calib_error``) and the
ratio of observed to expected events (``calib_oe``). A metric's spread is the SD of its
per-repeat means across repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import clone
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import Pipeline
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)

from ml.models._adapters import check_survival_target
from ml.models._baseline import kaplan_meier, step_values

#: Metrics reported by :func:`cross_validate_survival`, higher-is-better except noted.
METRICS = ("harrell_c", "uno_c", "mean_auc", "ibs", "calib_error", "calib_oe")


def _as_target(event, time) -> np.ndarray:
    y = np.empty(len(event), dtype=[("event", bool), ("time", "f8")])
    y["event"], y["time"] = event, time
    return y


def _take(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]


def survival_at(estimator, X, times) -> np.ndarray:
    """Survival probabilities of a fitted estimator at given times.

    Works with this package's estimators (``predict_survival_at``), with scikit-survival
    estimators (step functions on ``unique_times_``) and with Pipelines ending in either.

    Parameters
    ----------
    estimator : fitted survival estimator or Pipeline
    X : array-like or DataFrame
    times : array-like of float
        Days.

    Returns
    -------
    numpy.ndarray, shape (n, len(times))
    """
    times = np.atleast_1d(np.asarray(times, dtype=float))
    if isinstance(estimator, Pipeline):
        X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    if hasattr(estimator, "predict_survival_at"):
        return estimator.predict_survival_at(X, times)
    surv = estimator.predict_survival_function(X, return_array=True)
    return step_values(np.asarray(estimator.unique_times_), surv, times, before=1.0)


def calibration_table(risk, y, horizon: float, n_groups: int = 10) -> pd.DataFrame:
    """Predicted versus Kaplan-Meier observed risk at the horizon, by groups of predicted risk.

    Parameters
    ----------
    risk : array-like of float
        Predicted probability of the event by ``horizon`` (``1 - S(h | x)``).
    y : structured array
        Survival target (days).
    horizon : float
        Days.
    n_groups : int, default 10
        Equal-size groups of sorted predicted risk (deciles).

    Returns
    -------
    pandas.DataFrame
        ``group, n, predicted, observed``: mean predicted risk and ``1 - KM(h)`` of the group
        (the KM value at the group's last event time before ``h`` when follow-up ends early).
    """
    event, time = check_survival_target(y)
    risk = np.asarray(risk, dtype=float)
    order = np.argsort(risk, kind="mergesort")
    rows = []
    for g, idx in enumerate(np.array_split(order, min(n_groups, len(order)))):
        t, s = kaplan_meier(event[idx], time[idx])
        obs = 1.0 - float(step_values(t, s, [horizon], before=1.0)[0])
        rows.append({"group": g + 1, "n": idx.size, "predicted": float(risk[idx].mean()),
                     "observed": obs})
    return pd.DataFrame(rows)


def calibration_summary(table: pd.DataFrame) -> dict[str, float]:
    """``calib_error`` (size-weighted mean |observed - predicted|) and ``calib_oe`` (O/E)."""
    w = table["n"] / table["n"].sum()
    err = float(np.sum(w * np.abs(table["observed"] - table["predicted"])))
    expected = float(np.sum(w * table["predicted"]))
    return {"calib_error": err,
            "calib_oe": float(np.sum(w * table["observed"]) / expected) if expected > 0 else np.nan}


def default_time_grid(y, horizon: float | None = None, n_times: int = 10) -> np.ndarray:
    """Evaluation times: ``n_times`` quantiles (10th-80th) of event times, at most ``horizon``."""
    event, time = check_survival_target(y)
    et = time[event]
    if horizon is not None:
        et = et[et <= horizon]
    if et.size < 2:
        raise ValueError("need at least 2 event times (before the horizon) to build a time grid")
    return np.unique(np.quantile(et, np.linspace(0.1, 0.8, n_times)))


def fold_metrics(y_train, y_test, risk, surv, times, horizon: float) -> dict[str, float]:
    """Discrimination and accuracy metrics of one fold.

    Parameters
    ----------
    y_train, y_test : structured arrays
        Training target (for the censoring distribution) and test target.
    risk : array, shape (n_test,)
        Risk score (higher = earlier event).
    surv : array, shape (n_test, len(times)) or None
        Survival probabilities at ``times``; None skips the Brier score.
    times : array of float
        Evaluation grid (days).
    horizon : float
        Days; Uno's C is truncated here.

    Returns
    -------
    dict
        ``harrell_c``, ``uno_c``, ``mean_auc``, ``ibs`` (NaN where a metric is undefined on
        this fold, e.g. too few times inside its follow-up).
    """
    ev_tr, t_tr = check_survival_target(y_train)
    ev_te, t_te = check_survival_target(y_test)
    ytr, yte = _as_target(ev_tr, t_tr), _as_target(ev_te, t_te)
    out = {"harrell_c": float(concordance_index_censored(ev_te, t_te, risk)[0])}
    tau = min(float(horizon), float(t_tr.max()))
    try:
        out["uno_c"] = float(concordance_index_ipcw(ytr, yte, risk, tau=tau)[0])
    except ValueError:
        out["uno_c"] = np.nan
    ok = (times >= t_te.min()) & (times < t_te.max()) & (times < t_tr.max())
    tt = np.asarray(times)[ok]
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # a time with no case: NaN
            out["mean_auc"] = (float(cumulative_dynamic_auc(ytr, yte, risk, tt)[1])
                               if tt.size else np.nan)
    except ValueError:
        out["mean_auc"] = np.nan
    if surv is not None and tt.size >= 2:
        try:
            out["ibs"] = float(integrated_brier_score(ytr, yte, np.asarray(surv)[:, ok], tt))
        except ValueError:
            out["ibs"] = np.nan
    else:
        out["ibs"] = np.nan
    return out


@dataclass(frozen=True)
class SurvivalCVResult:
    """Outcome of :func:`cross_validate_survival`.

    Attributes
    ----------
    scores : DataFrame
        Tidy per-fold metrics: ``repeat, fold, metric, value``.
    summary : DataFrame
        Per metric: ``mean`` and ``sd`` across repeats of the per-repeat means, ``n_repeats``.
    calibration : DataFrame
        Per repeat and risk group: ``repeat, group, n, predicted, observed``.
    horizon : float
        Days.
    times : numpy.ndarray
        Time grid (days) for the AUC and Brier score.
    """

    scores: pd.DataFrame
    summary: pd.DataFrame
    calibration: pd.DataFrame
    horizon: float
    times: np.ndarray = field(repr=False)

    def intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Approximate confidence interval of each metric's cross-validated mean.

        ``mean +/- z * se``, where ``se`` is the SD of the per-fold values (pooled over repeats,
        about each repeat's mean) divided by sqrt(folds); for the per-repeat calibration
        metrics, the SD across repeats. It treats folds as independent, which they are not: no unbiased
        estimator of the variance of K-fold CV exists (Bengio & Grandvalet 2004, JMLR 5), so the
        interval is a guide to sampling noise, not an exact coverage statement. The SD across
        repeats (``summary["sd"]``) is much smaller: it measures only the choice of folds.

        Parameters
        ----------
        level : float, default 0.95

        Returns
        -------
        pandas.DataFrame
            Per metric (same index as ``summary``): ``mean``, ``se``, ``ci_low``, ``ci_high``.
        """
        from scipy import stats

        z = float(stats.norm.ppf(0.5 + level / 2))
        rows = {}
        for metric in self.summary.index:
            d = self.scores[self.scores["metric"] == metric]
            folds = d[d["fold"] >= 0]
            folds = folds[folds["value"].notna()]
            if len(folds) > folds["repeat"].nunique():
                # pooled within-repeat SD of the fold values (ddof: one mean per repeat), over sqrt(folds)
                dev = folds["value"] - folds.groupby("repeat")["value"].transform("mean")
                sd = float(np.sqrt(np.sum(dev ** 2) / (len(folds) - folds["repeat"].nunique())))
                se = sd / np.sqrt(len(folds) / folds["repeat"].nunique())
            else:
                se = float(d["value"].std(ddof=1)) if len(d) > 1 else float("nan")
            mean = float(self.summary.loc[metric, "mean"])
            rows[metric] = {"mean": mean, "se": se, "ci_low": mean - z * se, "ci_high": mean + z * se}
        return pd.DataFrame.from_dict(rows, orient="index").reindex(self.summary.index)

    def at_chance(self, metric: str = "harrell_c", level: float = 0.95) -> bool:
        """True when the interval of a concordance metric covers 0.5 (no better than chance)."""
        row = self.intervals(level).loc[metric]
        return bool(row["ci_low"] <= 0.5)

    def to_dict(self, prefix: str = "") -> dict[str, float]:
        """Flat metric dict, e.g. ``{"harrell_c_mean": 0.71, "harrell_c_sd": 0.01,
        "harrell_c_ci_low": 0.66, "harrell_c_ci_high": 0.76, ...}`` (95% intervals of
        :meth:`intervals`)."""
        out = {}
        ci = self.intervals()
        for metric, row in self.summary.iterrows():
            out[f"{prefix}{metric}_mean"] = float(row["mean"])
            out[f"{prefix}{metric}_sd"] = float(row["sd"])
            out[f"{prefix}{metric}_ci_low"] = float(ci.loc[metric, "ci_low"])
            out[f"{prefix}{metric}_ci_high"] = float(ci.loc[metric, "ci_high"])
        return out

    def calibration_figure(self, title: str | None = None) -> Figure:
        """Predicted versus observed risk at the horizon (see :func:`calibration_figure`)."""
        return calibration_figure(self.calibration, horizon=self.horizon, title=title,
                                  summary=self.summary)


def calibration_figure(calibration: pd.DataFrame, *, horizon: float, title: str | None = None,
                       summary: pd.DataFrame | None = None, figsize=(5, 5)) -> Figure:
    """Calibration plot at the horizon: decile means, one colour per repeat, and the diagonal.

    Parameters
    ----------
    calibration : DataFrame
        ``calibration_table`` output, optionally with a ``repeat`` column.
    horizon : float
        Days (for the labels).
    summary : DataFrame, optional
        CV summary; when given, the title carries ``calib_error`` mean +- SD.
    title : str, optional
        Figure title.
    figsize : (float, float)
        Width and height in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    groups = calibration.groupby("repeat") if "repeat" in calibration else [(0, calibration)]
    hi = 0.0
    for r, c in groups:
        ax.plot(c["predicted"], c["observed"], "o-", ms=4, lw=0.8, alpha=0.7, label=f"repeat {r}")
        hi = max(hi, c["predicted"].max(), c["observed"].max())
    hi = min(1.0, hi * 1.05 + 0.02)
    ax.plot([0, hi], [0, hi], "k--", lw=1, label="perfect")
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel(f"predicted risk by day {horizon:g}")
    ax.set_ylabel(f"observed risk by day {horizon:g} (Kaplan-Meier)")
    if title is None:
        title = f"Calibration at day {horizon:g}"
        if summary is not None and "calib_error" in summary.index:
            s = summary.loc["calib_error"]
            title += f"\nmean |obs - pred| = {s['mean']:.3f} +- {s['sd']:.3f}"
    ax.set_title(title, fontsize="medium")
    ax.legend(fontsize="x-small")
    return fig


def cross_validate_survival(estimator, X, y, *, horizon: float, n_splits: int = 5,
                            n_repeats: int = 3, times=None, n_groups: int = 10,
                            random_state=None) -> SurvivalCVResult:
    """Repeated K-fold cross-validation, stratified by event, of a survival estimator.

    Parameters
    ----------
    estimator : survival estimator or Pipeline
        Needs ``predict`` (risk score) and survival predictions (``predict_survival_at`` or
        scikit-survival's ``predict_survival_function``). Cloned for every fold. To evaluate
        tuning honestly, pass :class:`TunedXGBSurvival` (tuning inside each training fold).
    X : array-like or DataFrame, shape (n, p)
    y : structured array
        Survival target (days).
    horizon : float
        Days; calibration is assessed here and Uno's C truncated here.
    n_splits : int, default 5
    n_repeats : int, default 3
    times : array-like of float, optional
        Time grid (days) for the AUC and Brier score; default :func:`default_time_grid`.
    n_groups : int, default 10
        Risk groups for calibration.
    random_state : int, RandomState or None
        Seeds the fold assignment (and nothing else: the estimator's own ``random_state``
        is left as given).

    Returns
    -------
    SurvivalCVResult
    """
    event, time = check_survival_target(y)
    y = _as_target(event, time)
    grid = default_time_grid(y, horizon) if times is None else np.asarray(times, dtype=float)
    cv = RepeatedStratifiedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
    rows, calib = [], []
    oof = np.full((n_repeats, len(y)), np.nan)
    for k, (tr, te) in enumerate(cv.split(np.zeros(len(y)), event)):
        repeat, fold = divmod(k, n_splits)
        model = clone(estimator).fit(_take(X, tr), y[tr])
        Xte = _take(X, te)
        risk = np.asarray(model.predict(Xte), dtype=float)
        surv = survival_at(model, Xte, np.concatenate([grid, [horizon]]))
        oof[repeat, te] = 1.0 - surv[:, -1]
        for metric, value in fold_metrics(y[tr], y[te], risk, surv[:, :-1], grid, horizon).items():
            rows.append({"repeat": repeat, "fold": fold, "metric": metric, "value": value})
    for repeat in range(n_repeats):
        table = calibration_table(oof[repeat], y, horizon, n_groups)
        for metric, value in calibration_summary(table).items():
            rows.append({"repeat": repeat, "fold": -1, "metric": metric, "value": value})
        calib.append(table.assign(repeat=repeat))
    scores = pd.DataFrame(rows)
    per_repeat = scores.groupby(["metric", "repeat"])["value"].mean().unstack("repeat")
    summary = pd.DataFrame({
        "mean": per_repeat.mean(axis=1),
        "sd": per_repeat.std(axis=1, ddof=1) if n_repeats > 1 else 0.0,
        "n_repeats": n_repeats,
    }).reindex([m for m in METRICS if m in per_repeat.index])
    calibration = pd.concat(calib, ignore_index=True)[
        ["repeat", "group", "n", "predicted", "observed"]]
    return SurvivalCVResult(scores=scores, summary=summary, calibration=calibration,
                            horizon=float(horizon), times=grid)
