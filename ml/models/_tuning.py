"""Optuna tuning of XGBoost survival hyperparameters by cross-validation.

Each trial draws parameters from a :class:`XGBSearchSpace` (seeded TPE), fits one model per
event-stratified fold of the data it is given, and reports the running mean of the fold
scores after every fold so that a pruner (default :class:`optuna.pruners.MedianPruner`) can
stop unpromising trials early. ``callbacks`` are passed to ``study.optimize`` unchanged (e.g. a progress
bar); nothing here logs (``ml.tracking.RunTracker.log_trials`` logs the finished study).

Honesty: :func:`tune_xgb_survival` tunes on whatever data it receives. Scores of the tuned
model on that same data are optimistic. For an honest estimate wrap the tuning in the
estimator :class:`TunedXGBSurvival` and cross-validate that (nested CV: tuning sees only the
outer training folds), at ``n_splits x n_repeats`` times the tuning cost.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import optuna
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ml.models._adapters import check_survival_target
from ml.models._base import SurvivalCurvesMixin
from ml.models._evaluation import _take, survival_at
from ml.models._xgb_survival import XGBSurvival


@contextmanager
def quiet_optuna():
    """Optuna logs warnings only inside the block (one INFO line per trial otherwise)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def harrell_c_score(estimator, X, y) -> float:
    """Harrell's concordance of a fitted survival estimator on ``(X, y)`` (higher is better)."""
    return float(estimator.score(X, y))


@dataclass(frozen=True)
class XGBSearchSpace:
    """Ranges of the XGBoost hyperparameters searched by Optuna.

    The defaults keep models small (a few hundred patients, ~1-2 s budget per trial):
    shallow trees, at most 300 rounds, and strong regularisation available.

    Attributes
    ----------
    max_depth : (int, int)
    learning_rate : (float, float)
        Log-uniform.
    n_estimators : (int, int, int)
        Low, high, step.
    min_child_weight : (float, float)
        Log-uniform.
    subsample, colsample_bytree : (float, float)
    reg_lambda, reg_alpha : (float, float)
        Log-uniform.
    """

    max_depth: tuple[int, int] = (1, 4)
    learning_rate: tuple[float, float] = (0.01, 0.3)
    n_estimators: tuple[int, int, int] = (50, 300, 25)
    min_child_weight: tuple[float, float] = (0.5, 20.0)
    subsample: tuple[float, float] = (0.5, 1.0)
    colsample_bytree: tuple[float, float] = (0.5, 1.0)
    reg_lambda: tuple[float, float] = (1e-3, 20.0)
    reg_alpha: tuple[float, float] = (1e-3, 5.0)

    def suggest(self, trial: optuna.Trial) -> dict:
        """Draw one parameter set (keys are :class:`XGBSurvival` parameter names)."""
        lo, hi, step = self.n_estimators
        return {
            "max_depth": trial.suggest_int("max_depth", *self.max_depth),
            "learning_rate": trial.suggest_float("learning_rate", *self.learning_rate, log=True),
            "n_estimators": trial.suggest_int("n_estimators", lo, hi, step=step),
            "min_child_weight": trial.suggest_float("min_child_weight", *self.min_child_weight,
                                                    log=True),
            "subsample": trial.suggest_float("subsample", *self.subsample),
            "colsample_bytree": trial.suggest_float("colsample_bytree", *self.colsample_bytree),
            "reg_lambda": trial.suggest_float("reg_lambda", *self.reg_lambda, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", *self.reg_alpha, log=True),
        }


@dataclass(frozen=True)
class TuningResult:
    """Outcome of :func:`tune_xgb_survival`.

    Attributes
    ----------
    best_params : dict
        Best trial's parameters (``XGBSurvival`` names).
    best_score : float
        Its mean CV score (default Harrell's C) on the tuning data (optimistic, see module
        docstring).
    study : optuna.Study
        All trials, with per-fold intermediate values.
    best_estimator : estimator or None
        ``estimator`` with ``best_params``, refitted on all tuning data (None if ``refit``
        was False).
    """

    best_params: dict
    best_score: float
    study: optuna.Study
    best_estimator: object | None = None

    def to_dict(self) -> dict[str, float]:
        """Flat summary for logging: best score and trial counts by state."""
        states = [t.state for t in self.study.trials]
        return {
            "tuning_best_score": float(self.best_score),
            "tuning_n_trials": float(len(states)),
            "tuning_n_pruned": float(sum(s == optuna.trial.TrialState.PRUNED for s in states)),
            "tuning_n_complete": float(sum(s == optuna.trial.TrialState.COMPLETE for s in states)),
        }


def tune_xgb_survival(
    X,
    y,
    *,
    estimator=None,
    space: XGBSearchSpace | None = None,
    n_trials: int = 30,
    timeout: float | None = None,
    n_splits: int = 5,
    scoring=harrell_c_score,
    callbacks=(),
    pruner: optuna.pruners.BasePruner | None = None,
    random_state=None,
    study_name: str | None = None,
    refit: bool = True,
) -> TuningResult:
    """Tune an XGBoost survival model's hyperparameters with Optuna by K-fold CV.

    Parameters
    ----------
    X : array-like or DataFrame
        Features (already encoded, or raw when ``estimator`` is a Pipeline).
    y : structured array
        Survival target (days).
    estimator : estimator, optional
        Template whose parameters are tuned; default ``XGBSurvival()``. For a Pipeline, give
        a ``space`` whose ``suggest`` returns step-prefixed names (``"model__max_depth"``).
    space : XGBSearchSpace, optional
        Search space strategy (any object with ``suggest(trial) -> dict``).
    n_trials : int, default 30
    timeout : float, optional
        Seconds; the study stops after the trial running when it expires.
    n_splits : int, default 5
        Folds, stratified by event, fixed across trials (same seed) so trials compare fairly.
    scoring : callable ``(fitted_estimator, X_test, y_test) -> float``, default Harrell's C
        Higher is better.
    callbacks : sequence of callables
        Passed to ``study.optimize`` (e.g. a progress bar).
    pruner : optuna pruner, optional
        Default ``MedianPruner(n_startup_trials=5, n_warmup_steps=1)``: a trial stops when
        its running mean after a fold falls below the median of earlier trials at that fold.
    random_state : int or None
        Seeds the TPE sampler, the folds and the estimator (when it has ``random_state``).
    study_name : str, optional
    refit : bool, default True
        Refit the best parameters on all of ``(X, y)``.

    Returns
    -------
    TuningResult

    Raises
    ------
    ValueError
        Fewer than ``n_splits`` events or patients (checked before any trial: no Optuna
        traceback for a cohort without events).
    """
    event, time = check_survival_target(y)
    n, k = len(event), int(np.sum(event))
    if k < n_splits or n < n_splits:
        raise ValueError(
            f"too few {'patients' if n < n_splits else 'events'} to tune a survival model: {k} event(s) among {n} "
            f"patient(s), and {n_splits}-fold cross-validation needs at least {n_splits} of each"
            + (" (no events: nothing to learn)" if k == 0 else ""))
    yy = np.empty(len(event), dtype=[("event", bool), ("time", "f8")])
    yy["event"], yy["time"] = event, time
    rng = check_random_state(random_state)
    seed = int(rng.randint(np.iinfo(np.int32).max))
    template = XGBSurvival() if estimator is None else estimator
    if "random_state" in template.get_params():
        template = clone(template).set_params(random_state=seed)
    space = XGBSearchSpace() if space is None else space
    folds = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
                 .split(np.zeros(len(yy)), event))
    sampler = optuna.samplers.TPESampler(seed=seed)
    if pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=study_name)

    def objective(trial: optuna.Trial) -> float:
        params = space.suggest(trial)
        scores = []
        for step, (tr, te) in enumerate(folds):
            model = clone(template).set_params(**params).fit(_take(X, tr), yy[tr])
            scores.append(scoring(model, _take(X, te), yy[te]))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=list(callbacks),
                   gc_after_trial=False, show_progress_bar=False)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"no Optuna trial completed ({len(study.trials)} run, all pruned or "
                           "failed); raise n_trials or timeout, or use a gentler pruner")
    best = dict(study.best_params)
    best_estimator = clone(template).set_params(**best).fit(X, yy) if refit else None
    return TuningResult(best_params=best, best_score=float(study.best_value), study=study,
                        best_estimator=best_estimator)


class TunedXGBSurvival(SurvivalCurvesMixin, BaseEstimator):
    """An XGBoost survival model whose ``fit`` tunes its hyperparameters first.

    Cross-validating this estimator is nested cross-validation: each outer training fold runs
    its own Optuna study on inner folds, so the outer scores never see tuning data.

    Parameters
    ----------
    estimator : estimator, optional
        Template (default ``XGBSurvival()``).
    space : XGBSearchSpace, optional
    n_trials : int, default 30
    timeout : float, optional
        Seconds per study.
    n_splits : int, default 5
        Inner folds.
    scoring : callable, default Harrell's C
    callbacks : sequence, default ()
    random_state : int or None

    Attributes
    ----------
    best_estimator_ : fitted estimator
    best_params_ : dict
    study_ : optuna.Study
    unique_times_ : numpy.ndarray
    """

    def __init__(self, estimator=None, *, space=None, n_trials: int = 30, timeout=None,
                 n_splits: int = 5, scoring=harrell_c_score, callbacks=(), random_state=None):
        self.estimator = estimator
        self.space = space
        self.n_trials = n_trials
        self.timeout = timeout
        self.n_splits = n_splits
        self.scoring = scoring
        self.callbacks = callbacks
        self.random_state = random_state

    def fit(self, X, y) -> TunedXGBSurvival:
        """Tune on ``(X, y)`` by inner CV, then refit the best parameters on all of it."""
        result = tune_xgb_survival(
            X, y, estimator=self.estimator, space=self.space, n_trials=self.n_trials,
            timeout=self.timeout, n_splits=self.n_splits, scoring=self.scoring,
            callbacks=self.callbacks, random_state=self.random_state, refit=True)
        self.best_estimator_ = result.best_estimator
        self.best_params_ = result.best_params
        self.study_ = result.study
        self.unique_times_ = getattr(self.best_estimator_, "unique_times_", None)
        if hasattr(self.best_estimator_, "n_features_in_"):
            self.n_features_in_ = self.best_estimator_.n_features_in_
        return self

    def predict(self, X) -> np.ndarray:
        """Risk score of the tuned model."""
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_.predict(X)

    def _survival_at(self, X, times) -> np.ndarray:
        check_is_fitted(self, "best_estimator_")
        return survival_at(self.best_estimator_, X, times)
