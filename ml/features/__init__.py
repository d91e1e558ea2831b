"""Features and targets: endpoint builders (survival / competing-risk targets)."""

from ml.features._endpoints import (
    COMPETING_DTYPE,
    COMPONENTS,
    ENDPOINTS,
    SURVIVAL_DTYPE,
    EndpointDefinition,
    check_competing_target,
    check_survival_target,
    competing_target,
    parse_endpoint,
    survival_target,
)

__all__ = [
    "COMPETING_DTYPE",
    "COMPONENTS",
    "ENDPOINTS",
    "SURVIVAL_DTYPE",
    "EndpointDefinition",
    "check_competing_target",
    "check_survival_target",
    "competing_target",
    "parse_endpoint",
    "survival_target",
]

# feature frames and preprocessors (models engineer)
from ml.features._transformers import (  # noqa: E402
    COVARIATE_COLUMNS,
    DEFAULT_FEATURES,
    DERIVED_COLUMNS,
    add_derived_covariates,
    adjustment_covariates,
    feature_frame,
    make_preprocessor,
)

__all__ += [
    "COVARIATE_COLUMNS",
    "DEFAULT_FEATURES",
    "DERIVED_COLUMNS",
    "add_derived_covariates",
    "adjustment_covariates",
    "feature_frame",
    "make_preprocessor",
]
