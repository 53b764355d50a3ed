"""A source tree without a build runs on NumPy everywhere, with one warning naming what is missing.

The child process hides every compiled module (``fastnn._ext.*``) behind an import hook, exactly
as a fresh clone without ``pip install`` would, then runs kNN, HOG features and a Solver epoch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import importlib.abc, json, sys, warnings

    class HideExtensions(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.startswith("fastnn._ext."):
                raise ImportError(f"hidden for the test: {name}")
            return None

    sys.meta_path.insert(0, HideExtensions())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import numpy as np
        import fastnn
        from fastnn.classifiers import FullyConnectedNet, KNearestNeighbor
        from fastnn.features import hog_features
        from fastnn.kernels import available_impls, operations
        from fastnn.solver import Solver

        rng = np.random.default_rng(0)
        X = rng.standard_normal((60, 12))
        y = rng.integers(0, 3, 60)
        knn = KNearestNeighbor().fit(X[:50], y[:50])
        pred = knn.predict(X[50:], k=3)
        feats = hog_features(rng.uniform(0, 255, (4, 16, 16, 3)))
        model = FullyConnectedNet([8], input_dim=12, num_classes=3, normalization="batchnorm")
        solver = Solver(model, {"X_train": X[:50], "y_train": y[:50], "X_val": X[50:],
                                "y_val": y[50:]}, num_epochs=1, batch_size=10, verbose=False)
        solver.train()
    compiled = [op for op in operations() if "compiled" in available_impls(op)]
    config = fastnn.config_info()
    messages = [str(w.message) for w in caught if "not built" in str(w.message)]
    print(json.dumps({"pred": pred.tolist(), "hog_shape": list(feats.shape),
                      "loss": solver.loss_history[-1], "compiled": compiled,
                      "warnings": messages, "compiler": config["compiler"],
                      "missing": config["missing compiled modules"]}))
    """
)


def test_no_build_falls_back_to_numpy_with_one_warning():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["compiled"] == []
    assert len(report["pred"]) == 10
    assert report["hog_shape"] == [4, 2 * 2 * 9]
    assert report["loss"] > 0
    assert len(report["warnings"]) == 1, report["warnings"]
    assert report["compiler"] == "not built"
    for module in ("_distances", "_hog", "_normalization", "_optim"):
        assert f"fastnn._ext.{module}" in report["warnings"][0]
        assert f"fastnn._ext.{module}" in report["missing"]
