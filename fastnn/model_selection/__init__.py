"""Cross-validation and hyperparameter search."""
from fastnn.model_selection._cross_validation import (  # noqa: F401
    CVResult,
    cross_validate,
    cross_validate_knn,
    k_fold_split,
)
from fastnn.model_selection._search import (  # noqa: F401
    LogUniform,
    SearchResult,
    Uniform,
    grid_search,
    hyperparameter_search,
    random_search,
)
