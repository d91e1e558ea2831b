"""MLflow pyfunc of a registered ``ExposureWindow`` ("models from code", logged by ml.tracking).

The model's only artefact is the window JSON (``artifacts/window.json``), so a registered
version holds exactly one window, which is what the dosing engine reads from
``models:/NAME@validated``. ``predict`` places exposures relative to the window::

    auc_total (UE*day/mL)  ->  group (below / inside / above), in_window, status, unit

This file is copied into every logged model and must stay self-contained (mlflow and pandas only).
"""

import json
from pathlib import Path

import mlflow
import pandas as pd


class ExposureWindowModel(mlflow.pyfunc.PythonModel):
    """Classify exposures as below, inside or above the window ``[lower, upper)``."""

    def load_context(self, context):
        self.window = json.loads(Path(context.artifacts["window"]).read_text())

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        column = self.window.get("exposure", "auc_total")
        x = frame[column].astype(float)
        lower, upper = self.window.get("lower"), self.window.get("upper")
        below = x < lower if lower is not None else pd.Series(False, index=x.index)
        above = x >= upper if upper is not None else pd.Series(False, index=x.index)
        group = pd.Series("inside", index=x.index).mask(below, "below").mask(above, "above")
        return pd.DataFrame({"group": group, "in_window": ~(below | above),
                             "status": self.window["status"], "unit": self.window["unit"]})


mlflow.models.set_model(ExposureWindowModel())
