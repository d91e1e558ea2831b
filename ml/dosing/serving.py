"""The MLflow edge of the dosing engine: a pyfunc model for serving, and registry windows.

This is the only module of :mod:`ml.dosing` that imports MLflow. The pyfunc model
(:class:`DosingPyfunc`) carries the window JSON, the population PK model file and the engine's
configuration (caps, schedule, draws, seed, a recorded override) as artefacts, so
``mlflow models serve -m models:/atg-dosing/<version>`` recommends doses over REST::

    POST /invocations
    {"dataframe_records": [{"patient_id": "P01", "weight_kg": 68.5, "alc_pre_atg": 0.3,
                            "concentration_unit": "UE/mL",
                            "doses": [{"day": -5, "start_hour": 8, "dose_mg": 175, "infusion_hours": 6}],
                            "levels": [{"day": -4.4167, "concentration": 5.2, "bloq": 0}]}]}

Each row of the answer has ``status`` ``"recommended"`` (with the doses, forecast, P(below floor),
P(in window), P(above ceiling) for the recommended and the fixed regimen, and the full
recommendation as JSON) or ``"refused"`` (with the reason); a refusal never carries a dose.
"""

from __future__ import annotations

import json
import math
import tempfile
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Object, Property, Schema

from ml.pk import LaplaceImportance, PopPKModel

from ._engine import DosingEngine
from ._errors import DosingRefused
from ._patient import PatientData
from ._regimen import AdjustmentSchedule, DoseCaps
from ._window import (WindowOverride, WindowTarget, admit_window, load_window, window_from_dict, window_pk_model,
                      with_model_file)

__all__ = ["DosingPyfunc", "load_registered_pk_model", "load_registered_window", "log_dosing_model",
           "pyfunc_signature", "write_artifacts"]

REGISTERED_NAME = "atg-dosing"
#: the request format, stored with the model as its input example (a 70 kg patient, days -5/-4 levels)
EXAMPLE_PATIENT = {
    "patient_id": "EXAMPLE", "weight_kg": 70.0, "alc_pre_atg": 0.3, "concentration_unit": "UE/mL",
    "doses": [{"day": -5, "start_hour": 8.0, "dose_mg": 175.0, "infusion_hours": 6.0},
              {"day": -4, "start_hour": 8.0, "dose_mg": 175.0, "infusion_hours": 4.0}],
    "levels": [{"day": -4.666667, "bloq": 1}, {"day": -4.416667, "concentration": 6.1, "bloq": 0},
               {"day": -3.666667, "concentration": 4.4, "bloq": 0}, {"day": -3.5, "concentration": 11.2, "bloq": 0}],
}
_OUTPUT_COLUMNS = ("patient_id", "status", "doses_mg", "forecast_median", "forecast_lower", "forecast_upper",
                   "p_in_window", "warnings", "error", "recommendation")
#: both harms of the recommended and of the fixed regimen (same posterior draws), after the columns above
_HARM_COLUMNS = ("p_below_floor", "p_above_ceiling", "fixed_doses_mg", "fixed_p_below_floor",
                 "fixed_p_in_window", "fixed_p_above_ceiling")


def pyfunc_signature() -> ModelSignature:
    """Input schema: one row per patient, doses and levels as arrays of objects."""
    dose = Object([Property("day", "long"), Property("start_hour", "double", required=False),
                   Property("dose_mg", "double"), Property("infusion_hours", "double")])
    level = Object([Property("day", "double"), Property("concentration", "double", required=False),
                    Property("bloq", "long", required=False)])
    inputs = Schema([
        ColSpec("string", "patient_id"), ColSpec("double", "weight_kg"), ColSpec("double", "alc_pre_atg"),
        ColSpec("string", "concentration_unit"), ColSpec(Array(dose), "doses"),
        ColSpec(Array(level), "levels", required=False),
    ])
    return ModelSignature(inputs=inputs)


def _plain(value):
    """numpy / pandas values from the scoring server to plain Python (NaN -> None)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _engine_from_config(config: dict, model: PopPKModel) -> tuple[DosingEngine, WindowOverride | None]:
    engine = DosingEngine(model=model, caps=DoseCaps.from_dict(config["caps"]),
                          schedule=AdjustmentSchedule(**config["schedule"]),
                          posterior=LaplaceImportance(n_samples=int(config["n_samples"])),
                          random_state=int(config["random_state"]))
    override = WindowOverride(**config["override"]) if config.get("override") else None
    return engine, override


class DosingPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of :class:`DosingEngine` (artefacts: window, population model, engine)."""

    def load_context(self, context) -> None:
        self.window = load_window(context.artifacts["window"])
        model = PopPKModel.from_toml(context.artifacts["population_model"])
        config = json.loads(Path(context.artifacts["engine"]).read_text())
        self.engine, self.override = _engine_from_config(config, model)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        records = [_plain(r) for r in model_input.to_dict(orient="records")]
        patients = []
        for r in records:
            r = {k: v for k, v in r.items() if v is not None}
            r.setdefault("levels", [])
            for lv in r["levels"]:
                for key in [k for k, v in lv.items() if v is None]:
                    del lv[key]
            for d in r.get("doses", []):
                for key in [k for k, v in d.items() if v is None]:
                    del d[key]
            try:
                patients.append(PatientData.from_dict(r))
            except DosingRefused as exc:
                patients.append(exc)
        try:
            results = self.engine.recommend_many(patients, self.window, self.override)
        except DosingRefused as exc:  # the window itself cannot be used for these patients
            results = [exc] * len(patients)
        rows = []
        for rec_in, res in zip(records, results):
            if isinstance(res, DosingRefused):
                rows.append({"patient_id": str(rec_in.get("patient_id")), "status": "refused", "doses_mg": [],
                             "forecast_median": None, "forecast_lower": None, "forecast_upper": None,
                             "p_in_window": None, "warnings": [], "error": str(res), "recommendation": None,
                             **{k: None for k in _HARM_COLUMNS}, "fixed_doses_mg": []})
            else:
                rows.append({"patient_id": res.patient_id, "status": "recommended",
                             "doses_mg": [d.mg for d in res.doses], "forecast_median": res.forecast.median,
                             "forecast_lower": res.forecast.lower, "forecast_upper": res.forecast.upper,
                             "p_in_window": res.forecast.p_in_window, "warnings": list(res.warnings),
                             "error": None, "recommendation": res.to_json(),
                             "p_below_floor": res.forecast.p_below_floor,
                             "p_above_ceiling": res.forecast.p_above_ceiling,
                             "fixed_doses_mg": list(res.fixed_forecast.doses_mg),
                             "fixed_p_below_floor": res.fixed_forecast.p_below_floor,
                             "fixed_p_in_window": res.fixed_forecast.p_in_window,
                             "fixed_p_above_ceiling": res.fixed_forecast.p_above_ceiling})
        return pd.DataFrame(rows, columns=list(_OUTPUT_COLUMNS + _HARM_COLUMNS))


def log_dosing_model(window: str | Path, *, model: PopPKModel | None = None, caps: DoseCaps | None = None,
                     schedule: AdjustmentSchedule | None = None, n_samples: int = 256, random_state: int = 0,
                     override: WindowOverride | None = None, tracking_uri: str | None = None,
                     registered_model_name: str | None = REGISTERED_NAME, input_example: dict | None = None,
                     experiment_name: str = "atg-dosing", artifact_location: str | None = None):
    """Log the engine as an MLflow pyfunc model and register it (default name ``atg-dosing``).

    The window is checked before anything is logged: a window that the engine would refuse
    (``no-window``, not ``validated`` without ``override``, a unit other than the population
    model's) is never served. An override is stored with the model and recorded in every
    recommendation it makes.

    Parameters
    ----------
    window : str or Path
        ``ExposureWindow`` JSON file.
    model : PopPKModel, optional
        Population PK model (default: the model that defined the window's exposure, which the
        window names, else the shipped one); logged as its TOML file.
    caps, schedule : optional
        Engine configuration (defaults of :class:`DoseCaps` / :class:`AdjustmentSchedule`).
    n_samples, random_state : int
        Posterior draws per patient and the seed.
    override : WindowOverride, optional
    tracking_uri : str, optional
        Tracking / registry store (default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    registered_model_name : str or None
        None logs without registering.
    input_example : dict, optional
        One patient in the JSON form, stored with the model (default :data:`EXAMPLE_PATIENT`).
    experiment_name : str
        Experiment of the logging run (created if missing).
    artifact_location : str, optional
        Artefact root of a new experiment; default for a local ``sqlite:///PATH`` store:
        ``mlartifacts/`` beside the database (never the current directory).

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    LaplaceImportance(n_samples)  # validate before anything is written
    with tempfile.TemporaryDirectory() as tmp:
        artifacts, target, recorded = write_artifacts(tmp, window, model=model, caps=caps, schedule=schedule,
                                                      n_samples=n_samples, random_state=random_state,
                                                      override=override)
        with _store(tracking_uri) as uri:
            experiment_id = _experiment(uri, experiment_name, artifact_location)
            with mlflow.start_run(experiment_id=experiment_id, run_name="atg-dosing-engine"):
                config = json.loads(Path(artifacts["engine"]).read_text())
                mlflow.log_params({"n_samples": n_samples, "random_state": random_state,
                                   "window_status": target.status, "window_unit": target.unit,
                                   **{f"caps.{k}": v for k, v in config["caps"].items()}})
                if recorded is not None:
                    mlflow.set_tags({"override.by": recorded.by, "override.reason": recorded.reason})
                return mlflow.pyfunc.log_model(
                    name="atg-dosing", python_model=DosingPyfunc(), artifacts=artifacts,
                    signature=pyfunc_signature(), registered_model_name=registered_model_name,
                    input_example=pd.DataFrame([input_example or EXAMPLE_PATIENT]),
                    pip_requirements=_requirements())


@contextmanager
def _store(tracking_uri: str | None):
    """Use ``tracking_uri`` (resolved as :mod:`ml.tracking` does) as tracking and registry store
    inside the block, restoring MLflow's process globals and environment exactly afterwards
    (:func:`ml.tracking.fluent_uri`), so child processes such as ``mlflow models serve`` never
    inherit a stale store."""
    from ml.tracking._uri import fluent_uri, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    with fluent_uri(uri):
        yield uri


def _experiment(uri: str, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created with artefacts beside a local SQLite store (never the cwd)."""
    from ml.tracking import artifact_root

    client = mlflow.MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    if artifact_location is None:
        root = artifact_root(uri)
        artifact_location = None if root is None else f"{root}/{name}"
    return client.create_experiment(name, artifact_location=artifact_location)


def _requirements() -> list[str]:
    """Pinned requirements of the served model (the engine's own dependencies, as installed).

    Given explicitly rather than inferred: inference imports the model in a subprocess, which is
    slow and can pick up unrelated packages. The ``ml`` package itself (``atg-window``) must be
    installed where the model is served.
    """
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", "numpy", "scipy", "pandas")]


def write_artifacts(directory: str | Path, window: str | Path, *, model: PopPKModel | None = None,
                    caps: DoseCaps | None = None, schedule: AdjustmentSchedule | None = None,
                    n_samples: int = 256, random_state: int = 0, override: WindowOverride | None = None):
    """Check the window and write the pyfunc's artefacts (window, population model, engine) to a folder.

    Returns
    -------
    artifacts : dict
        ``name -> path`` as :func:`mlflow.pyfunc.log_model` takes them.
    window : WindowTarget
    override : WindowOverride or None
        The override recorded (only when the window needed one).

    Raises
    ------
    DosingRefused
        The window would be refused (``no-window``, not validated without an override, a unit
        other than the population model's).
    """
    caps = caps or DoseCaps()
    schedule = schedule or AdjustmentSchedule()
    target = load_window(window)
    model = model or window_pk_model(target) or PopPKModel.default()
    recorded = admit_window(target, model.concentration_unit, model.concentration_unit, override)
    config = {"caps": caps.to_dict(), "schedule": schedule.to_dict(), "n_samples": int(n_samples),
              "random_state": int(random_state), "override": None if recorded is None else recorded.to_dict()}
    directory = Path(directory)
    paths = {"window": directory / "window.json", "population_model": directory / "population_model.toml",
             "engine": directory / "engine.json"}
    from ml._atomic import write_atomic

    write_atomic(paths["window"], Path(window).read_text(), mkdir=False)
    model.to_toml(paths["population_model"])
    write_atomic(paths["engine"], json.dumps(config, indent=2), mkdir=False)
    return {k: str(v) for k, v in paths.items()}, target, recorded


def load_registered_window(uri: str, tracking_uri: str | None = None) -> WindowTarget:
    """Read the window artefact behind an MLflow URI (``models:/NAME@validated``, ``runs:/...``).

    The downloaded artefacts are searched for exactly one ``ExposureWindow`` JSON, which is
    validated like a file. The window's own ``status`` decides (artefacts are immutable, so a
    registry alias never upgrades a ``candidate`` window): an alias ``validated`` pointing at a
    candidate window is refused downstream like any candidate.
    """
    try:
        with _store(tracking_uri):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot read"
        raise DosingRefused(f"cannot read window {uri}: {exc}") from exc
    files = [local] if local.is_file() else sorted(local.rglob("*.json"))
    found = []
    for f in files:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and {"unit", "status", "target"} <= set(data):
            found.append((f, data))
    if len(found) != 1:
        raise DosingRefused(f"{uri} must hold exactly one ExposureWindow JSON, found {len(found)}")
    # the population PK model registered with the window sits beside its JSON (ml.tracking.register_window)
    digest = _registered_digest(uri, tracking_uri)
    return with_model_file(window_from_dict(found[0][1], uri, registered_digest=digest), found[0][0].parent)


def _registered_digest(uri: str, tracking_uri: str | None) -> str | None:
    """The content digest the registry recorded for the version ``uri`` names (None: not a
    ``models:/`` URI, or a version registered before digests were recorded)."""
    from ml.tracking._registry import WINDOW_DIGEST_TAG, parse_model_ref

    try:
        ref = parse_model_ref(uri)
    except ValueError:
        return None
    try:
        with _store(tracking_uri) as resolved:
            client = mlflow.MlflowClient(tracking_uri=resolved, registry_uri=resolved)
            mv = (client.get_model_version_by_alias(ref.name, ref.alias) if ref.alias
                  else client.get_model_version(ref.name, ref.version))
    except Exception as exc:  # noqa: BLE001 - MLflow raises many kinds; all mean "cannot read"
        raise DosingRefused(f"cannot read the registry record of {uri}: {exc}") from exc
    return (mv.tags or {}).get(WINDOW_DIGEST_TAG) or None


def load_registered_pk_model(uri: str, tracking_uri: str | None = None) -> PopPKModel:
    """The population PK model file (``*.toml``) behind an MLflow URI (exactly one).

    Raises
    ------
    DosingRefused
        Unreadable URI, or not exactly one model file.
    """
    try:
        with _store(tracking_uri):
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except Exception as exc:  # noqa: BLE001
        raise DosingRefused(f"cannot read population PK model {uri}: {exc}") from exc
    files = [local] if local.is_file() else sorted(local.rglob("*.toml"))
    if len(files) != 1:
        raise DosingRefused(f"{uri} must hold exactly one population PK model file (.toml), found {len(files)}")
    return PopPKModel.from_file(files[0])
