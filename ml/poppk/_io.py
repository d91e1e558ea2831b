"""Reading and writing model files: the declarative TOML format of
``ml/pk/default_model.toml``, or a JSON rendering of the same tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ml._atomic import write_atomic
from ml.pk import PopPKModel


def model_to_dict(model: PopPKModel) -> dict:
    """The model as the tables of its TOML file: ``model``, ``typical``, ``covariates``,
    ``iiv``, ``residual`` and any extra tables (e.g. ``fit``, ``se_typical``)."""
    out = {
        "model": {"name": model.name, "status": model.status,
                  "concentration_unit": model.concentration_unit,
                  "active_fraction": model.active_fraction, "source": model.source},
        "typical": dict(model.typical), "covariates": dict(model.covariates),
        "iiv": dict(model.iiv), "residual": dict(model.residual),
    }
    out.update({k: v for k, v in model.extra.items() if isinstance(v, dict)})
    return out


def model_from_dict(data: dict) -> PopPKModel:
    """Inverse of :func:`model_to_dict` (:meth:`ml.pk.PopPKModel.from_dict`, the one parser of
    model files)."""
    return PopPKModel.from_dict(data)


def write_model(model: PopPKModel, path: str | Path) -> Path:
    """Write a model file: JSON for a ``.json`` name, the TOML format otherwise.

    Both hold the same tables; :func:`read_model` reads either, and the TOML is also what
    :meth:`ml.pk.PopPKModel.from_toml` reads.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        text = json.dumps(_finite(model_to_dict(model)), indent=2, sort_keys=False) + "\n"
    else:
        text = model.to_toml_string()
    return write_atomic(path, text, mkdir=False)


def read_model(path: str | Path) -> PopPKModel:
    """Read a model file written by :func:`write_model` (JSON or TOML, by suffix)."""
    return PopPKModel.from_file(path)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
