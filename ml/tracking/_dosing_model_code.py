"""The code file of the ``atg-dosing`` pyfunc model (MLflow "models from code").

MLflow copies this file into every logged dosing model and runs it when the model is loaded; the
``ml`` package travels with the model (``code_paths``), so the import below finds the code the
model was logged with. The model itself is :class:`ml.tracking._dosing_model.DosingPyfunc`.
"""

import mlflow

from ml.tracking._dosing_model import DosingPyfunc

__all__: list[str] = []  # nothing to import: MLflow runs this file

mlflow.models.set_model(DosingPyfunc())
