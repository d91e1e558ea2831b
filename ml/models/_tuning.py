"""Optuna tuning of XGBoost survival hyperparameters by cross-validation.

Each trial draws parameters from a :class:`XGBSearchSpace` (seeded TPE), fits one model per
event-stratified fold of the data it is given, and reports the running mean of the fold
scores after every fold so that a pruner (default :class:`optuna.pruners.MedianPruner`) can
stop unpromising trials early. ``callbacks`` are passed to ``study.optimize`` unchanged (e.g. a progress
bar); nothing here logs (``ml.tracking.RunTracker.log_trials`` logs the finished study).

Parallel tuning: given a ``storage`` (:mod:`ml.models._storage`: an Optuna journal file on one
machine, or a database such as the shared PostgreSQL), the study lives there and ``n_workers``
processes (this one and ``n_workers - 1`` spawned ones) join it; more processes or machines join by
calling :func:`tune_xgb_survival` with the same storage and study name. ``n_trials`` is then the
study's total (Optuna's ``MaxTrialsCallback``; it may overshoot by at most one trial per extra
worker), every worker waits until no trial of the study is running, and the best trial is read back
from the storage: the same trial for every worker. Each worker seeds its TPE sampler with the run's
seed plus its index, so workers do not repeat each other's draws; a parallel study is therefore not
reproducible trial for trial, only its folds and model seeds are.

Honesty: :func:`tune_xgb_survival` tunes on whatever data it receives. Scores of the tuned
model on that same data are optimistic. For an honest estimate wrap the tuning in the
estimator :class:`TunedXGBSurvival` and cross-validate that (nested CV: tuning sees only the
outer training folds), at ``n_splits x n_repeats`` times the tuning cost.
"""

from __future__ import annotations

import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

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

__all__ = ["TunedXGBSurvival", "TuningResult", "WorkerReport", "XGBSearchSpace", "harrell_c_score", "quiet_optuna",
           "tune_xgb_survival"]


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
    storage : str or None
        Where the study lives (password masked); None: in memory, this process only.
    study_name : str or None
    best_trial : int or None
        Number of the best trial in the study.
    workers : tuple of WorkerReport
        What each worker process started here saw at its end (empty for an in-memory study).
    """

    best_params: dict
    best_score: float
    study: optuna.Study
    best_estimator: object | None = None
    storage: str | None = None
    study_name: str | None = None
    best_trial: int | None = None
    workers: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict[str, float]:
        """Flat summary for logging: best score, trial counts by state, worker processes."""
        states = [t.state for t in self.study.trials]
        return {
            "tuning_best_score": float(self.best_score),
            "tuning_n_trials": float(len(states)),
            "tuning_n_pruned": float(sum(s == optuna.trial.TrialState.PRUNED for s in states)),
            "tuning_n_complete": float(sum(s == optuna.trial.TrialState.COMPLETE for s in states)),
            "tuning_n_workers": float(max(1, len(self.workers))),
        }

    def storage_info(self) -> dict:
        """Where the study lives and which trial won, for the run's results."""
        return {"storage": self.storage or "in-memory", "study_name": self.study_name,
                "best_trial": self.best_trial, "n_workers": max(1, len(self.workers))}


@dataclass(frozen=True)
class WorkerReport:
    """What one worker of a shared study saw once no trial of the study was running any more.

    Attributes
    ----------
    worker : int
        Index of the worker (its TPE sampler is seeded with the run's seed plus it).
    pid : int
        Its process id.
    n_own_trials : int
        Trials this worker ran.
    best_trial : int
        Number of the study's best trial, read from the storage.
    best_value : float
        Its score.
    best_params : dict
    """

    worker: int
    pid: int
    n_own_trials: int
    best_trial: int
    best_value: float
    best_params: dict


@dataclass(frozen=True)
class _Objective:
    """The CV objective of one study: picklable, so that spawned workers evaluate the same folds."""

    X: object
    y: np.ndarray
    template: object
    space: object
    folds: tuple
    scoring: object

    def __call__(self, trial: optuna.Trial) -> float:
        params = self.space.suggest(trial)
        scores = []
        for step, (tr, te) in enumerate(self.folds):
            model = clone(self.template).set_params(**params).fit(_take(self.X, tr), self.y[tr])
            scores.append(self.scoring(model, _take(self.X, te), self.y[te]))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))


@dataclass(frozen=True)
class _WorkerTask:
    """One worker's share of a shared study (sent to a spawned process)."""

    objective: _Objective
    storage: object
    study_name: str
    worker: int
    seed: int
    pruner: object
    n_trials: int
    timeout: float | None
    join_timeout: float


def _run_worker(task: _WorkerTask, callbacks=()) -> WorkerReport:
    """Join the study, run trials until it holds ``n_trials``, wait for the others, read the best back."""
    import os

    with quiet_optuna():
        study = optuna.load_study(study_name=task.study_name, storage=task.storage.open(),
                                  sampler=optuna.samplers.TPESampler(seed=task.seed + task.worker),
                                  pruner=task.pruner)
        mine = []

        def count(study, trial):
            mine.append(trial.number)

        if len(study.get_trials(deepcopy=False)) < task.n_trials:
            stop = optuna.study.MaxTrialsCallback(task.n_trials, states=None)
            study.optimize(task.objective, n_trials=task.n_trials, timeout=task.timeout,
                           callbacks=[stop, count, *callbacks], gc_after_trial=False, show_progress_bar=False)
        deadline = time.monotonic() + task.join_timeout
        while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            if time.monotonic() > deadline:
                warnings.warn(f"study {task.study_name!r}: trials still RUNNING after {task.join_timeout:.0f} s "
                              "(a worker died or is slow); the best trial is read from the finished ones",
                              RuntimeWarning, stacklevel=2)
                break
            time.sleep(0.2)
        best = _best_complete(study)
    return WorkerReport(worker=task.worker, pid=os.getpid(), n_own_trials=len(mine), best_trial=best.number,
                        best_value=float(best.value), best_params=dict(best.params))


def _best_complete(study: optuna.Study):
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"no Optuna trial completed ({len(study.trials)} run, all pruned or "
                           "failed); raise n_trials or timeout, or use a gentler pruner")
    return study.best_trial


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
    storage=None,
    n_workers: int = 1,
    first_worker: int = 0,
    join_timeout: float = 600.0,
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
        With a ``storage``: the study every worker joins (created if new); default a new unique name.
    refit : bool, default True
        Refit the best parameters on all of ``(X, y)``.
    storage : JournalTuningStorage or RDBTuningStorage, optional
        Where the study lives (``ml.models.tuning_storage``); default in memory, this process only.
    n_workers : int, default 1
        Worker processes joining the study from this call: this one and ``n_workers - 1`` spawned
        ones (each imports the package: a second or two). More than 1 needs a ``storage``.
    first_worker : int, default 0
        Index of this call's first worker (TPE seed offset): give each machine joining the same
        study its own range so that their samplers differ.
    join_timeout : float, default 600
        Seconds a worker waits for the study's other running trials before reading the best.

    Returns
    -------
    TuningResult

    Raises
    ------
    ValueError
        Fewer than ``n_splits`` events or patients (checked before any trial: no Optuna
        traceback for a cohort without events); ``n_workers`` above 1 without a ``storage``.
    """
    if int(n_workers) < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    if n_workers > 1 and storage is None:
        raise ValueError(f"n_workers={n_workers} needs a storage every worker can reach (journal:PATH or a "
                         "database URL); an in-memory study lives in one process")
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
    if pruner is None:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    objective = _Objective(X=X, y=yy, template=template, space=space, folds=tuple(folds), scoring=scoring)
    if storage is None:
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                    pruner=pruner, study_name=study_name)
        study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=list(callbacks),
                       gc_after_trial=False, show_progress_bar=False)
        best_trial = _best_complete(study)
        reports, where = (), None
    else:
        study_name = study_name or f"xgb-{uuid.uuid4().hex[:12]}"
        optuna.create_study(direction="maximize", storage=storage.open(), study_name=study_name,
                            load_if_exists=True)
        tasks = [_WorkerTask(objective=objective, storage=storage, study_name=study_name, worker=first_worker + k,
                             seed=seed, pruner=pruner, n_trials=int(n_trials), timeout=timeout,
                             join_timeout=join_timeout) for k in range(int(n_workers))]
        reports = _run_workers(tasks, callbacks)
        study = optuna.load_study(study_name=study_name, storage=storage.open())
        best_trial, where = _best_complete(study), storage.describe()
    best = dict(best_trial.params)
    best_estimator = clone(template).set_params(**best).fit(X, yy) if refit else None
    return TuningResult(best_params=best, best_score=float(best_trial.value), study=study,
                        best_estimator=best_estimator, storage=where, study_name=study.study_name,
                        best_trial=best_trial.number, workers=tuple(reports))


def _run_workers(tasks: list[_WorkerTask], callbacks) -> list[WorkerReport]:
    """The first task in this process, the others in spawned processes (``concurrent.futures``)."""
    if len(tasks) == 1:
        return [_run_worker(tasks[0], callbacks)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: XGBoost and OpenMP threads of this process must not be copied mid-flight
    with ProcessPoolExecutor(max_workers=len(tasks) - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_worker, task) for task in tasks[1:]]
        first = _run_worker(tasks[0], callbacks)
        return [first, *(f.result() for f in futures)]


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
