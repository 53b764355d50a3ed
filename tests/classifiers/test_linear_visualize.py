"""fastnn.visualize: weight templates and loss curves of linear classifiers."""

from __future__ import annotations

import builtins
import sys

import numpy as np
import pytest

from fastnn.visualize import plot_loss_history, plot_weight_templates, weight_templates

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_weight_templates_reshape_and_scale(rng):
    W = rng.standard_normal((4 * 5 * 3 + 1, 7))
    images = weight_templates(W, (4, 5, 3))
    assert images.shape == (7, 4, 5, 3) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 255
    # one shared scaling: the pixel order is the row-major flattening of (H, W, C)
    low, high = W[:-1].min(), W[:-1].max()
    expected = np.round(255 * (W[:-1, 2].reshape(4, 5, 3) - low) / (high - low))
    np.testing.assert_array_equal(images[2], expected)
    # without a bias row, and grayscale
    gray = weight_templates(rng.standard_normal((28 * 28, 10)), (28, 28))
    assert gray.shape == (10, 28, 28)
    with pytest.raises(ValueError, match=r"W must have 61 rows for images of shape \(4, 5, 3\)"):
        weight_templates(W[:10], (4, 5, 3), has_bias_row=True)


def test_pngs_are_written(rng, tmp_path):
    pytest.importorskip("matplotlib")
    W = rng.standard_normal((28 * 28 + 1, 10))
    path = tmp_path / "templates.png"
    plot_weight_templates(W, (28, 28, 1), class_names=[f"c{i}" for i in range(10)], path=path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    curve = tmp_path / "loss.png"
    plot_loss_history(list(np.exp(-np.linspace(0, 3, 300))), path=curve, smooth=20)
    assert curve.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="class_names must have one name per class"):
        plot_weight_templates(W, (28, 28, 1), class_names=["a"])


def test_missing_matplotlib_gives_a_clear_error(monkeypatch, rng):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install \"fastnn\[plot\]\""):
        plot_loss_history([1.0, 0.5])
    with pytest.raises(ImportError, match="needs matplotlib"):
        plot_weight_templates(rng.standard_normal((5, 2)), (2, 2))
