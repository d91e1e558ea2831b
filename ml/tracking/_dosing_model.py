"""The dosing engine as an MLflow pyfunc model: its request/response contract, and how it is logged.

:class:`DosingPyfunc` carries the window JSON, the population PK model file and the engine's
configuration (caps, schedule, draws, seed, a recorded override) as artefacts. It is logged
"from code" (:mod:`ml.tracking._dosing_model_code` is the model's code file) with the ``ml``
package itself as code (``code_paths``) and the project's dependencies, pinned as installed, as
its pip requirements, so the model version serves in an environment where this project is not
installed. :func:`log_dosing_model` registers it as ``atg-dosing`` with an alias and tags naming
the window it doses into.

Request (``POST /invocations``, one row per patient; numbers may be integers or decimals)::

    {"dataframe_records": [{"patient_id": "P01", "weight_kg": 68.5, "alc_pre_atg": 0.3,
                            "concentration_unit": "UE/mL",
                            "doses": [{"day": -5, "start_hour": 8, "dose_mg": 175, "infusion_hours": 6}],
                            "levels": [{"day": -4.4167, "concentration": 5.2, "bloq": 0}]}]}

Response: ``{"predictions": [...]}``, one object per patient with ``status`` (``"recommended"``
or ``"refused"``), ``simulated`` (the window was derived from a virtual cohort), ``warnings``,
``caveats``, ``reason`` (why it was refused, else null), the doses (mg), the forecast and the
three harms of the recommended and of the fixed regimen, and ``recommendation`` (the full
:class:`ml.dosing.DoseRecommendation` as an object; null when refused). A request whose input
cannot be dosed (a patient field missing or invalid, levels in another unit than the window's, a
dose or level at or after the day -3 decision) is rejected as a whole with HTTP 400 naming the
rows and the problem; the README's "Serving" section shows a request and its response.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types.schema import AnyType, Array, ColSpec, Object, Property, Schema

from ml._atomic import write_atomic
from ml.dosing import (
    AdjustmentSchedule,
    DoseCaps,
    DosingEngine,
    DosingRefused,
    LaplaceImportance,
    PatientData,
    WindowOverride,
    WindowRecord,
    admit_window,
    window_from_dict,
    window_pk_model,
)
from ml.pk import PopPKModel
from ml.tracking._uri import fluent_uri, quiet, resolve_tracking_uri
from ml.tracking._windows import is_registry_uri, load_window_source, registered_window_file

__all__ = ["DEFAULT_ALIAS", "EXAMPLE_PATIENT", "REGISTERED_NAME", "DosingPyfunc", "log_dosing_model",
           "pyfunc_signature", "write_artifacts"]

REGISTERED_NAME = "atg-dosing"
#: the alias the registered version gets unless told otherwise (``models:/atg-dosing@current``)
DEFAULT_ALIAS = "current"
MODEL_CODE = Path(__file__).with_name("_dosing_model_code.py")
#: the request format, stored with the model as its input example (a 70 kg patient, days -5/-4 levels)
EXAMPLE_PATIENT = {
    "patient_id": "EXAMPLE", "weight_kg": 70.0, "alc_pre_atg": 0.3, "concentration_unit": "UE/mL",
    "doses": [{"day": -5, "start_hour": 8, "dose_mg": 175, "infusion_hours": 6},
              {"day": -4, "start_hour": 8, "dose_mg": 175, "infusion_hours": 4}],
    "levels": [{"day": -4.666667, "bloq": 1}, {"day": -4.416667, "concentration": 6.1, "bloq": 0},
               {"day": -3.666667, "concentration": 4.4, "bloq": 0}, {"day": -3.5, "concentration": 11.2, "bloq": 0}],
}


def pyfunc_signature() -> ModelSignature:
    """Input schema: one row per patient, doses and levels as arrays of objects.

    The numbers inside ``doses`` and ``levels`` are declared ``any`` so that an integer
    (``"dose_mg": 175``, what ``JSON.stringify`` sends for 175.0) is accepted: MLflow's ``double``
    refuses a JSON integer inside an object. Their types and ranges are checked by
    :meth:`ml.dosing.PatientData.from_dict`, which names the field (HTTP 400).
    """
    num = AnyType()
    dose = Object([Property("day", num), Property("start_hour", num, required=False),
                   Property("dose_mg", num), Property("infusion_hours", num)])
    level = Object([Property("day", num), Property("concentration", num, required=False),
                    Property("bloq", num, required=False)])
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


def _without_nulls(record: dict) -> dict:
    """A request row with absent (null) fields removed, also inside its doses and levels."""
    out = {k: v for k, v in record.items() if v is not None}
    for key in ("doses", "levels"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in item.items() if v is not None} if isinstance(item, dict) else item
                        for item in out[key]]
    out.setdefault("levels", [])
    return out


def _engine_from_config(config: dict, model: PopPKModel) -> tuple[DosingEngine, WindowOverride | None]:
    engine = DosingEngine(model=model, caps=DoseCaps.from_dict(config["caps"]),
                          schedule=AdjustmentSchedule(**config["schedule"]),
                          posterior=LaplaceImportance(n_samples=int(config["n_samples"])),
                          random_state=int(config["random_state"]))
    override = WindowOverride(**config["override"]) if config.get("override") else None
    return engine, override


def _refused(patient_id: str, reason: str, simulated: bool) -> dict:
    return {"patient_id": patient_id, "status": "refused", "simulated": simulated, "reason": reason,
            "warnings": [], "caveats": [], "doses_mg": [], "forecast_median": None, "forecast_lower": None,
            "forecast_upper": None, "p_below_floor": None, "p_in_window": None, "p_above_ceiling": None,
            "fixed_doses_mg": [], "fixed_p_below_floor": None, "fixed_p_in_window": None,
            "fixed_p_above_ceiling": None, "recommendation": None}


def _recommended(rec, simulated: bool) -> dict:
    f, x = rec.forecast, rec.fixed_forecast
    return {"patient_id": rec.patient_id, "status": "recommended", "simulated": simulated, "reason": None,
            "warnings": list(rec.warnings), "caveats": list(rec.caveats), "doses_mg": [d.mg for d in rec.doses],
            "forecast_median": f.median, "forecast_lower": f.lower, "forecast_upper": f.upper,
            "p_below_floor": f.p_below_floor, "p_in_window": f.p_in_window, "p_above_ceiling": f.p_above_ceiling,
            "fixed_doses_mg": list(x.doses_mg), "fixed_p_below_floor": x.p_below_floor,
            "fixed_p_in_window": x.p_in_window, "fixed_p_above_ceiling": x.p_above_ceiling,
            "recommendation": rec.to_dict()}


class DosingPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper of :class:`ml.dosing.DosingEngine` (artefacts: window, population model, engine).

    ``predict`` returns a list with one plain object per patient (see the module docstring); the
    scoring server sends it as ``{"predictions": [...]}``.
    """

    def load_context(self, context) -> None:
        config = json.loads(Path(context.artifacts["engine"]).read_text())
        path = Path(context.artifacts["window"])
        # a registry window was checked against the registry's digest when it was logged; the same
        # digest, kept with the engine, checks the copy in this immutable model version
        self.window = window_from_dict(json.loads(path.read_text()), config.get("window_source") or str(path),
                                       registered_digest=config.get("window_digest"))
        model = PopPKModel.from_toml(context.artifacts["population_model"])
        self.engine, self.override = _engine_from_config(config, model)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[dict]:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        records = [_without_nulls(_plain(r)) for r in frame.to_dict(orient="records")]
        patients, problems = [], []
        for i, r in enumerate(records):
            try:
                p = PatientData.from_dict(r)
            except DosingRefused as exc:
                problems.append(f"row {i}: {exc}")
                continue
            problem = self.engine.patient_problem(p, self.window)
            if problem:
                problems.append(f"row {i}: patient {p.patient_id!r}: {problem}")
            patients.append(p)
        if problems:
            raise MlflowException(f"request rejected, nothing was dosed: {'; '.join(problems)}",
                                  error_code=INVALID_PARAMETER_VALUE)
        simulated = bool(self.window.simulated)
        try:
            results = self.engine.recommend_many(patients, self.window, self.override)
        except DosingRefused as exc:  # the window itself cannot be used
            results = [exc] * len(patients)
        return [_refused(p.patient_id, str(r), simulated) if isinstance(r, DosingRefused) else
                _recommended(r, simulated) for p, r in zip(patients, results)]


def _requirements() -> list[str]:
    """The pip requirements of the served model: the project's own dependencies, pinned as installed.

    Given explicitly rather than inferred (inference imports the model in a subprocess, which is
    slow and can pick up unrelated packages). The project's code travels with the model
    (``code_paths``), so the project itself is not a requirement that pip must find.
    """
    import re
    from importlib.metadata import PackageNotFoundError, requires, version

    try:
        declared = requires("atg-window") or []
    except PackageNotFoundError:
        declared = ["mlflow", "numpy", "scipy", "pandas"]
    names = [re.match(r"[A-Za-z0-9_.-]+", d).group(0) for d in declared if "extra ==" not in d]
    return [f"{name}=={version(name)}" for name in names]


def write_artifacts(directory: str | Path, window: str | Path, *, model: PopPKModel | None = None,
                    caps: DoseCaps | None = None, schedule: AdjustmentSchedule | None = None,
                    n_samples: int = 256, random_state: int = 0, override: WindowOverride | None = None,
                    tracking_uri: str | None = None):
    """Check the window and write the pyfunc's artefacts (window, population model, engine) to a folder.

    Parameters
    ----------
    directory : str or Path
    window : str or Path
        ``ExposureWindow`` JSON file or registry URI (``models:/NAME@validated``).
    model : PopPKModel, optional
        Default: the model that defined the window's exposure (which the window names), else the
        shipped one.
    caps : DoseCaps, optional
        Dose caps (see :func:`log_dosing_model`).
    schedule : AdjustmentSchedule, optional
        The adjustable doses (see :func:`log_dosing_model`).
    n_samples : int
        Posterior draws per patient.
    random_state : int
        Seed of the engine.
    override : WindowOverride, optional
        The override a window that is not validated needs.
    tracking_uri : str, optional
        For a registry window.

    Returns
    -------
    artifacts : dict
        ``name -> path`` as :func:`mlflow.pyfunc.log_model` takes them.
    window : ml.window.ExposureWindow
        As read (:func:`ml.tracking.load_window_source`).
    override : WindowOverride or None
        The override recorded (only when the window needed one).

    Raises
    ------
    ml.dosing.DosingRefused
        The window would be refused (``no-window``, not validated without an override, a unit
        other than the population model's, an unreadable source).
    """
    caps = caps or DoseCaps()
    schedule = schedule or AdjustmentSchedule()
    target = load_window_source(window, tracking_uri)
    model = model or window_pk_model(target) or PopPKModel.default()
    recorded = admit_window(target, model.concentration_unit, model.concentration_unit, override)
    if is_registry_uri(window):
        path, digest = registered_window_file(str(window), tracking_uri)
    else:
        path, digest = Path(window), None
    config = {"caps": caps.to_dict(), "schedule": schedule.to_dict(), "n_samples": int(n_samples),
              "random_state": int(random_state), "override": None if recorded is None else recorded.to_dict(),
              "window_source": str(window), "window_digest": digest}
    directory = Path(directory)
    paths = {"window": directory / "window.json", "population_model": directory / "population_model.toml",
             "engine": directory / "engine.json"}
    write_atomic(paths["window"], path.read_text(), mkdir=False)
    model.to_toml(paths["population_model"])
    write_atomic(paths["engine"], json.dumps(config, indent=2), mkdir=False)
    return {k: str(v) for k, v in paths.items()}, target, recorded


def _tags(window, model: PopPKModel, config: dict, recorded: WindowOverride | None) -> dict:
    """Model-version tags: which window, population model and engine configuration it serves."""
    from importlib.metadata import PackageNotFoundError, version

    target = WindowRecord.of(window)
    try:
        code = version("atg-window")
    except PackageNotFoundError:
        code = "unknown"
    tags = {"window_source": target.source, "window_status": target.status, "window_unit": target.unit,
            "window_lower": str(target.lower), "window_upper": str(target.upper), "window_target": str(target.target),
            "window_integrity": target.integrity, "window_dataset_digest": target.dataset_digest,
            "simulated": str(bool(target.simulated)).lower(), "pk_model_name": model.name,
            "pk_model_digest": model.digest, "n_samples": str(config["n_samples"]),
            "random_state": str(config["random_state"]), "atg_window_version": code}
    if config.get("window_digest"):
        tags["window_digest"] = config["window_digest"]
    if recorded is not None:
        tags.update({"override.by": recorded.by, "override.reason": recorded.reason})
    return tags


def _experiment(client, name: str, uri: str, artifact_location: str | None) -> str:
    """The experiment's id, created with artefacts beside a local SQLite store (never the cwd)."""
    from ml.tracking._uri import artifact_root

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    if artifact_location is None:
        root = artifact_root(uri)
        artifact_location = None if root is None else f"{root}/{name}"
    return client.create_experiment(name, artifact_location=artifact_location)


def log_dosing_model(window: str | Path, *, model: PopPKModel | None = None, caps: DoseCaps | None = None,
                     schedule: AdjustmentSchedule | None = None, n_samples: int = 256, random_state: int = 0,
                     override: WindowOverride | None = None, tracking_uri: str | None = None,
                     registered_model_name: str | None = REGISTERED_NAME, alias: str | None = DEFAULT_ALIAS,
                     input_example: dict | None = None, experiment_name: str = "atg-dosing",
                     artifact_location: str | None = None):
    """Log the engine as an MLflow pyfunc model (from code) and register it (default ``atg-dosing``).

    The window is checked before anything is logged: a window that the engine would refuse
    (``no-window``, not ``validated`` without ``override``, a unit other than the population
    model's) is never served. An override is stored with the model and recorded in every
    recommendation it makes.

    Parameters
    ----------
    window : str or Path
        ``ExposureWindow`` JSON file or registry URI (``models:/NAME@validated``).
    model : PopPKModel, optional
        Population PK model (default: the model that defined the window's exposure, which the
        window names, else the shipped one); logged as its TOML file.
    caps, schedule : optional
        Engine configuration (defaults of :class:`ml.dosing.DoseCaps` /
        :class:`ml.dosing.AdjustmentSchedule`).
    n_samples, random_state : int
        Posterior draws per patient and the seed.
    override : WindowOverride, optional
    tracking_uri : str, optional
        Tracking / registry store (default: ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    registered_model_name : str or None
        None logs without registering.
    alias : str or None
        Alias pointed at the new version (default ``current``: serve ``models:/atg-dosing@current``);
        None sets none.
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
        ``registered_model_version`` is the new version (None when not registered).
    """
    import ml

    LaplaceImportance(n_samples)  # validate before anything is written
    with tempfile.TemporaryDirectory() as tmp:
        artifacts, target, recorded = write_artifacts(tmp, window, model=model, caps=caps, schedule=schedule,
                                                      n_samples=n_samples, random_state=random_state,
                                                      override=override, tracking_uri=tracking_uri)
        config = json.loads(Path(artifacts["engine"]).read_text())
        pk = PopPKModel.from_toml(artifacts["population_model"])
        tags = _tags(target, pk, config, recorded)
        uri = resolve_tracking_uri(tracking_uri)
        with fluent_uri(uri), quiet():
            client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
            experiment_id = _experiment(client, experiment_name, uri, artifact_location)
            with mlflow.start_run(experiment_id=experiment_id, run_name="atg-dosing-engine"):
                mlflow.log_params({"n_samples": n_samples, "random_state": random_state,
                                   "window_status": target.status, "window_unit": target.unit,
                                   **{f"caps.{k}": v for k, v in config["caps"].items()}})
                mlflow.set_tags(tags)
                info = mlflow.pyfunc.log_model(
                    name="atg-dosing", python_model=str(MODEL_CODE), artifacts=artifacts,
                    code_paths=[str(Path(ml.__file__).parent)], signature=pyfunc_signature(),
                    registered_model_name=registered_model_name,
                    input_example=pd.DataFrame([input_example or EXAMPLE_PATIENT]),
                    pip_requirements=_requirements())
            if registered_model_name is not None:
                version = str(info.registered_model_version)
                for key, value in tags.items():
                    client.set_model_version_tag(registered_model_name, version, key, value)
                if alias:
                    client.set_registered_model_alias(registered_model_name, alias, version)
    return info
