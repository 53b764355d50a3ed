"""Cross-validation and hyperparameter search."""
