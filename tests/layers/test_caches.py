"""Every backward function refuses a cache that its own forward function did not make.

Wrong tuple length, wrong item types and a cache from another layer all raise a ValueError or
TypeError whose message names ``cache`` (before issue 7 they failed deep inside NumPy with
"too many values to unpack", "tuple index out of range" or an unrelated broadcast error, or
silently computed garbage).
"""

import numpy as np
import pytest

from fastnn import layers

N, D, M = 4, 5, 3


def _caches(rng):
    """One genuine cache per backward function, with a matching dout."""
    x = rng.standard_normal((N, D))
    w, b = rng.standard_normal((D, M)), rng.standard_normal(M)
    gamma, beta = np.ones(M), np.zeros(M)
    bn_param = {"mode": "train"}
    out = {
        "affine_backward": layers.affine_forward(x, w, b),
        "affine_backward_params": layers.affine_forward(x, w, b),
        "relu_backward": layers.relu_forward(x),
        "leaky_relu_backward": layers.leaky_relu_forward(x),
        "sigmoid_backward": layers.sigmoid_forward(x),
        "tanh_backward": layers.tanh_forward(x),
        "elu_backward": layers.elu_forward(x),
        "dropout_backward": layers.dropout_forward(x, {"mode": "train", "p": 0.5, "seed": 0}),
        "batchnorm_backward": layers.batchnorm_forward(x, np.ones(D), np.zeros(D), bn_param),
        "batchnorm_backward_alt": layers.batchnorm_forward(x, np.ones(D), np.zeros(D),
                                                           bn_param),
        "layernorm_backward": layers.layernorm_forward(x, np.ones(D), np.zeros(D), {}),
        "affine_relu_backward": layers.affine_relu_forward(x, w, b),
        "affine_bn_relu_backward": layers.affine_bn_relu_forward(x, w, b, gamma, beta,
                                                                 {"mode": "train"}),
        "affine_ln_relu_backward": layers.affine_ln_relu_forward(x, w, b, gamma, beta, {}),
    }
    return {name: (np.ones_like(o), cache) for name, (o, cache) in out.items()}


BACKWARDS = sorted(
    ["affine_backward", "affine_backward_params", "relu_backward", "leaky_relu_backward",
     "sigmoid_backward", "tanh_backward", "elu_backward", "dropout_backward",
     "batchnorm_backward", "batchnorm_backward_alt", "layernorm_backward",
     "affine_relu_backward", "affine_bn_relu_backward", "affine_ln_relu_backward"])


@pytest.mark.parametrize("name", BACKWARDS)
def test_genuine_cache_works(rng, name):
    dout, cache = _caches(rng)[name]
    grads = getattr(layers, name)(dout, cache)
    assert all(np.all(np.isfinite(g)) for g in (grads if isinstance(grads, tuple) else [grads]))


def _same_layout(a, b):
    """Pairs whose caches are the same thing (the same forward, or relu's x vs sigmoid's out)."""
    groups = [{"affine_backward", "affine_backward_params"},
              {"batchnorm_backward", "batchnorm_backward_alt"},
              {"relu_backward", "sigmoid_backward", "tanh_backward"},
              {"leaky_relu_backward", "elu_backward"}]
    return a == b or any(a in g and b in g for g in groups)


FOREIGN = [(a, b) for a in BACKWARDS for b in BACKWARDS if not _same_layout(a, b)]


@pytest.mark.parametrize(("name", "other"), FOREIGN)
def test_cache_of_another_layer_is_refused(rng, name, other):
    caches = _caches(rng)
    dout = caches[name][0]
    foreign = caches[other][1]
    with pytest.raises((ValueError, TypeError), match="cache"):
        getattr(layers, name)(dout, foreign)


@pytest.mark.parametrize("name", BACKWARDS)
@pytest.mark.parametrize("bad", [None, 3.0, "cache", (), (np.ones(2),) * 7])
def test_malformed_caches_are_refused(rng, name, bad):
    dout, _ = _caches(rng)[name]
    with pytest.raises((ValueError, TypeError), match="cache"):
        getattr(layers, name)(dout, bad)


@pytest.mark.parametrize("name", ["batchnorm_backward", "batchnorm_backward_alt",
                                  "layernorm_backward"])
def test_wrong_item_types_and_lengths(rng, name):
    dout, cache = _caches(rng)[name]
    backward = getattr(layers, name)
    with pytest.raises(ValueError, match="cache must be the .* tuple"):
        backward(dout, cache[:-1])
    with pytest.raises(TypeError, match="cache must come from .*x_hat"):
        backward(dout, ("x_hat",) + tuple(cache[1:]))
    with pytest.raises(ValueError, match="cache must come from .*gamma must have shape"):
        backward(dout, (cache[0], np.ones(D + 1)) + tuple(cache[2:]))
    with pytest.raises(ValueError, match="cache must come from .*inv_std must have shape"):
        backward(dout, tuple(cache[:2]) + (np.ones(D + 1),) + tuple(cache[3:]))
    if name != "layernorm_backward":
        with pytest.raises(TypeError, match="cache must come from .*train must be a bool"):
            backward(dout, tuple(cache[:3]) + ("yes",))


def test_leaky_relu_and_elu_alpha_must_be_a_number(rng):
    x = rng.standard_normal((2, 3))
    for backward in (layers.leaky_relu_backward, layers.elu_backward):
        with pytest.raises(TypeError, match="cache must come from .*alpha must be a real number"):
            backward(np.ones_like(x), (x, np.ones(3)))


def test_affine_cache_with_inconsistent_shapes(rng):
    x, w = rng.standard_normal((4, 6)), rng.standard_normal((5, 3))
    with pytest.raises(ValueError, match="cache must come from affine_forward"):
        layers.affine_backward(np.ones((4, 3)), (x, w, np.zeros(3)))


def test_dropout_cache_mode_and_mask_must_agree(rng):
    x = rng.standard_normal((2, 3))
    with pytest.raises(TypeError, match="cache must come from dropout_forward.*train"):
        layers.dropout_backward(x, (np.ones((2, 3)), "train"))
    with pytest.raises(TypeError, match="cache must come from dropout_forward.*mask"):
        layers.dropout_backward(x, (None, True))
    with pytest.raises(TypeError, match="cache must come from dropout_forward"):
        layers.dropout_backward(x, (np.ones((2, 3)), False))
