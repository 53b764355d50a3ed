"""Cross-validation and hyperparameter search."""

from fastnn.model_selection._cross_validation import (
    CVResult,
    cross_validate,
    cross_validate_knn,
    k_fold_split,
)
from fastnn.model_selection._search import (
    LogUniform,
    SearchResult,
    Uniform,
    grid_search,
    hyperparameter_search,
    random_search,
)
from fastnn.model_selection._split import train_validation_split

__all__ = [
    "CVResult",
    "LogUniform",
    "SearchResult",
    "Uniform",
    "cross_validate",
    "cross_validate_knn",
    "grid_search",
    "hyperparameter_search",
    "k_fold_split",
    "random_search",
    "train_validation_split",
]
