"""The window in the MLflow model registry: register a candidate, promote it to validated.

A registered version is a minimal pyfunc (:mod:`ml.tracking._window_model`) whose only artefact
is one ``ExposureWindow`` JSON. Artefacts are immutable, so promotion never edits a version: it
checks the gates, writes a *new* validated window (``ml.window.promote_window``), registers it as
a new version of the same model from a promotion run, points the alias ``validated`` at it and
records who and why as tags. The dosing engine loads ``models:/NAME@validated`` and trusts only
the JSON's own ``status``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ml._status import WindowStatus
from ml.tracking._runs import RunTracker, TrackingError
from ml.tracking._uri import fluent_uri, quiet

__all__ = [
    "CANDIDATE",
    "PK_MODEL_FILE",
    "VALIDATED",
    "WINDOW_DIGEST_TAG",
    "ModelRef",
    "RegisteredWindow",
    "RegistryWindowStore",
    "parse_model_ref",
    "pk_model_file",
    "promote_registered",
    "register_window",
]

CANDIDATE, VALIDATED = WindowStatus.CANDIDATE, WindowStatus.VALIDATED
MODEL_CODE = Path(__file__).with_name("_window_model.py")
#: The population PK model travels with the window under this name (beside ``window.json``).
PK_MODEL_FILE = "pk_model.toml"
#: Model-version tag holding the registered window's content digest (``ml.window.content_digest``):
#: the registry is the source of truth, every load checks the downloaded JSON against it.
WINDOW_DIGEST_TAG = "window_digest"
_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version named by alias (``models:/NAME@ALIAS``) or number (``models:/NAME/3``)."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"models:/{self.name}@{self.alias}" if self.alias else f"models:/{self.name}/{self.version}"


def parse_model_ref(ref: str) -> ModelRef:
    """Parse ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``.

    Raises
    ------
    ValueError
        Any other form.
    """
    m = _REF.match(ref.strip())
    if not m:
        raise ValueError(f"not a registered-model reference: {ref!r}; use models:/NAME@ALIAS or models:/NAME/VERSION")
    return ModelRef(m["name"], m["alias"], m["version"])


@dataclass(frozen=True)
class RegisteredWindow:
    """Where a window was registered.

    Attributes
    ----------
    name, version, alias : str
    uri : str
        ``models:/NAME/VERSION``.
    run_id : str
        Run that logged the model.
    """

    name: str
    version: str
    alias: str
    uri: str
    run_id: str

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "alias": self.alias, "uri": self.uri,
                "run_id": self.run_id}


def _signature(exposure: str):
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("double", exposure)]),
                          outputs=Schema([ColSpec("string", "group"), ColSpec("boolean", "in_window"),
                                          ColSpec("string", "status"), ColSpec("string", "unit")]))


def register_window(tracker: RunTracker, run_id: str, window_path: str | Path, model_name: str, *,
                    alias: str = CANDIDATE, tags: dict | None = None) -> RegisteredWindow:
    """Log the window JSON as a pyfunc model of run ``run_id``, register it, set ``alias``.

    Parameters
    ----------
    tracker : RunTracker
    run_id : str
        The run that produced (or promoted) the window.
    window_path : path-like
        One ``ExposureWindow`` JSON file (it becomes ``artifacts/window.json`` of the model).
    model_name : str
        Registered model name (e.g. ``atg-window-urd``).
    alias : str
        ``candidate`` for a new window, ``validated`` for a promoted one.
    tags : dict, optional
        Model-version tags (status, gates, who/why, dataset digest, ...).

    Returns
    -------
    RegisteredWindow
    """
    import mlflow

    data = json.loads(Path(window_path).read_text())
    model_file = pk_model_file(window_path, data)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "window.json"
        local.write_text(json.dumps(data, indent=2) + "\n")
        artifacts = {"window": str(local)}
        pk_tags = {}
        if model_file is not None:
            from ml.pk import PopPKModel

            copy = Path(tmp) / PK_MODEL_FILE  # same name beside the window: the window's relative source resolves
            copy.write_text(model_file.read_text())
            artifacts["pk_model"] = str(copy)
            pk = PopPKModel.from_file(copy)
            pk_tags = {"pk_model_name": pk.name, "pk_model_digest": pk.digest, "pk_model_status": pk.status}
        elif isinstance(data.get("pk_model"), dict):
            pk_tags = {"pk_model_name": data["pk_model"].get("name", ""),
                       "pk_model_digest": data["pk_model"].get("digest", ""),
                       "pk_model_source": data["pk_model"].get("source", "")}
        # MLflow prints "Successfully registered model ..." on stderr; the caller reports it.
        with tracker.active(run_id), contextlib.redirect_stderr(io.StringIO()):
            info = mlflow.pyfunc.log_model(
                name="exposure_window", python_model=str(MODEL_CODE), artifacts=artifacts,
                registered_model_name=model_name, signature=_signature(data.get("exposure", "auc_total")),
                pip_requirements=[f"mlflow=={mlflow.__version__}", "pandas"],
                metadata={"window_status": data["status"], "unit": data["unit"], **pk_tags})
    tags = {**pk_tags, **(tags or {})}
    version = str(info.registered_model_version)
    client = tracker.client
    client.set_registered_model_alias(model_name, alias, version)
    from ml.window import content_digest

    base = {"window_status": data["status"], "unit": data["unit"], "dataset_digest": data.get("dataset_digest", ""),
            "simulated": str(bool(data.get("simulated"))).lower(), "source_run_id": run_id,
            WINDOW_DIGEST_TAG: content_digest(data)}
    for k, v in {**base, **tags}.items():
        client.set_model_version_tag(model_name, version, k, str(v))
    if not client.get_registered_model(model_name).description:
        client.update_registered_model(model_name, description=(
            "ATG exposure window (total active-ATG AUC) as an ExposureWindow JSON; alias 'candidate' = latest "
            "search result, 'validated' = passed the promotion gates. The JSON's own status is authoritative."))
    return RegisteredWindow(name=model_name, version=version, alias=alias, uri=f"models:/{model_name}/{version}",
                            run_id=run_id)


def pk_model_file(window_path: str | Path, data: dict) -> Path | None:
    """The population PK model file that goes with a window file, or None.

    The window's ``pk_model.source`` when it names a file (relative to the window's folder),
    else :data:`PK_MODEL_FILE` beside the window when it exists. ``"shipped"`` and URIs name no
    file here.
    """
    folder = Path(window_path).parent
    rec = data.get("pk_model") if isinstance(data, dict) else None
    if isinstance(rec, dict):
        src = str(rec.get("source") or "")
        if not src or src == "shipped" or ":/" in src:
            return None
        path = Path(src) if Path(src).is_absolute() else folder / src
        return path if path.is_file() else None
    beside = folder / PK_MODEL_FILE
    return beside if beside.is_file() else None


def check_registered_digest(data: dict, recorded: str | None, where: str) -> None:
    """Refuse a registered window whose content is not the content registered (tag ``window_digest``).

    Raises
    ------
    TrackingError
        The digests differ (the artefact was edited in the store after registration).
    """
    from ml.window import IntegrityError, check_registered

    try:
        check_registered(data, recorded, where)
    except IntegrityError as exc:
        raise TrackingError(f"{exc}; it is not used") from None


def _find_window_json(folder: Path) -> dict:
    found = []
    for f in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and {"unit", "status", "target"} <= set(data):
            found.append(data)
    if len(found) != 1:
        raise TrackingError(f"a registered window version must hold exactly one ExposureWindow JSON, found {len(found)}")
    return found[0]


class RegistryWindowStore:
    """Windows in the model registry, for ``atgwin promote models:/NAME@candidate``.

    ``load`` reads the window of a version (and the gates its experiment set, from the version's
    tags); ``save`` registers a validated window as a new version from a promotion run and moves
    the alias ``validated`` to it, recording who and why.

    Parameters
    ----------
    tracking_uri : str, optional
    """

    def __init__(self, tracking_uri: str | None = None):
        self.tracker = RunTracker(tracking_uri)
        self.source = None  # the ModelVersion loaded
        self.pk_model_text = None  # its population PK model file, carried to the promoted version

    def load(self, ref: str):
        """The ``ExposureWindow`` of the version ``ref`` names.

        Raises
        ------
        TrackingError
            Unknown model / alias / version, or not exactly one window JSON in the version.
        ValueError
            Malformed reference, or an invalid window.
        """
        import mlflow

        from ml.window import ExposureWindow

        r = parse_model_ref(ref)
        client = self.tracker.client
        try:
            mv = (client.get_model_version_by_alias(r.name, r.alias) if r.alias
                  else client.get_model_version(r.name, r.version))
        except Exception as exc:  # noqa: BLE001
            raise TrackingError(f"{ref}: no such registered model version in {self.tracker.tracking_uri} ({exc})") from exc
        # models:/ URIs resolve through the (process-wide) registry URI: point it at this store
        with tempfile.TemporaryDirectory() as tmp, fluent_uri(self.tracker.tracking_uri), quiet():
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{r.name}/{mv.version}",
                                                             dst_path=tmp))
            data = _find_window_json(local)
            check_registered_digest(data, (mv.tags or {}).get(WINDOW_DIGEST_TAG), f"models:/{r.name}/{mv.version}")
            found = sorted(local.rglob(PK_MODEL_FILE))
            self.pk_model_text = found[0].read_text() if found else None
        self.source = mv
        return ExposureWindow.from_dict(data)

    def recorded_gates(self):
        """``PromotionGates`` set by the experiment that registered the loaded version (None if absent)."""
        from ml.window import PromotionGates

        tags = dict(self.source.tags or {}) if self.source is not None else {}
        try:
            return PromotionGates(alpha=float(tags["gate.alpha"]), max_ci_width=float(tags["gate.max_ci_width"]),
                                  min_events=int(tags["gate.min_events"]))
        except (KeyError, ValueError):
            return None

    def save(self, window, ref: str | None = None) -> str:
        """Register the validated ``window`` as a new version with alias ``validated``.

        Parameters
        ----------
        window : ExposureWindow
            Status ``validated`` (from ``promote_window``), carrying who and why.
        ref : str, optional
            Also write the validated JSON to this file path.

        Returns
        -------
        str
            ``models:/NAME/VERSION (alias validated)``.
        """
        if self.source is None:
            raise TrackingError("load a registered window before saving its promotion")
        if window.status != VALIDATED:
            raise ValueError(f"only a validated window is registered by promotion, got status {window.status!r}")
        mv = self.source
        name = mv.name
        client = self.tracker.client
        try:
            exp_id = client.get_run(mv.run_id).info.experiment_id if mv.run_id else self.tracker.experiment_id(name)
        except Exception:  # noqa: BLE001 - the source run may be gone; keep promotions together
            exp_id = self.tracker.experiment_id(f"{name}-promotions")
        tags = {"atgwin.kind": "promotion", "atgwin.source_model_version": f"models:/{name}/{mv.version}",
                "atgwin.promoted_by": window.promoted_by, "atgwin.promotion_reason": window.promotion_reason,
                "atgwin.simulated": str(window.simulated).lower(),
                "mlflow.note.content": f"Promotion of models:/{name}/{mv.version} to 'validated' by "
                                       f"{window.promoted_by}: {window.promotion_reason}"}
        run = client.create_run(exp_id, run_name=f"promote-{name}-v{mv.version}", tags=tags)
        run_id = run.info.run_id
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "window.json"
                window.to_json(path)
                if self.pk_model_text is not None:
                    (Path(tmp) / PK_MODEL_FILE).write_text(self.pk_model_text)
                if ref:
                    window.to_json(ref)
                client.log_artifact(run_id, str(path), "window")
                reg = register_window(self.tracker, run_id, path, name, alias=VALIDATED, tags={
                    "promoted_by": window.promoted_by, "promotion_reason": window.promotion_reason,
                    "promoted_at": window.promoted_at, "promoted_from_version": mv.version,
                    "gates_passed": "; ".join(window.gates_passed)})
            for i, g in enumerate(window.gates_passed):
                client.log_param(run_id, f"gate_{i}", g[:500])
            client.set_terminated(run_id, "FINISHED")
        except Exception:
            client.set_terminated(run_id, "FAILED")
            raise
        return f"{reg.uri} (alias {VALIDATED})"


def promote_registered(ref: str, *, by: str, reason: str, gates=None, tracking_uri: str | None = None) -> str:
    """Gate-check the window of ``ref`` and register its validated copy (alias ``validated``).

    The run that wrote the window must have finished; the validated copy is signed with the
    centre's key when one is set (``ml.window.SigningKey.from_env``).

    Parameters
    ----------
    ref : str
        ``models:/NAME@candidate`` or ``models:/NAME/VERSION``.
    by, reason : str
        Who promotes and why (recorded in the window and as tags).
    gates : PromotionGates, optional
        Default: the gates the experiment recorded with the version.
    tracking_uri : str, optional
        The MLflow tracking store (default: as resolved by :func:`ml.tracking.resolve_tracking_uri`).

    Returns
    -------
    str
        Where the validated window was registered.

    Raises
    ------
    ml.window.PromotionError
        Listing every failing gate; nothing is registered then.
    """
    from ml.window import PromotionGates, SigningKey, promote_window

    store = RegistryWindowStore(tracking_uri)
    window = store.load(ref)
    gates = gates or store.recorded_gates() or PromotionGates()
    return store.save(promote_window(window, gates, by=by, reason=reason, key=SigningKey.from_env(),
                                     run_status=store.tracker.run_status))
