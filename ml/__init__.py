"""ATG exposure-window discovery and dosing.

Subpackages: :mod:`ml.cohort` (data contract, loading, validation), :mod:`ml.pk`
(pharmacokinetics, exposure), :mod:`ml.sim` (virtual cohorts), :mod:`ml.features`
(endpoints, feature matrices), :mod:`ml.window` (window search, ExposureWindow),
:mod:`ml.models` (survival and tree models, SHAP), :mod:`ml.tracking` (MLflow),
:mod:`ml.dosing` (dose individualisation).
"""

__version__ = "0.1.0"
