"""RNN and LSTM layers: CS231n notebook values, numerical gradients (float64, relative error below
1e-7), torch.nn.LSTM / torch.nn.RNN as an independent oracle, truncated BPTT state carrying,
dtypes and bad input."""

import numpy as np
import pytest

from fastnn.gradient_check import eval_numerical_gradient_array, rel_error
from fastnn.kernels import get_impl
from fastnn.layers import (
    lstm_backward,
    lstm_forward,
    lstm_last_state,
    lstm_step_backward,
    lstm_step_forward,
    rnn_backward,
    rnn_forward,
    rnn_last_state,
    rnn_step_backward,
    rnn_step_forward,
)


def _weights(rng, d, h, gates, scale=0.5):
    return (rng.standard_normal((d, gates * h)) * scale, rng.standard_normal((h, gates * h)) * scale,
            rng.standard_normal(gates * h) * scale)


def _grad_errors(f, inputs, dout):
    """Relative errors of the analytic gradients (in input order) against numerical ones."""
    return [rel_error(eval_numerical_gradient_array(lambda _, k=k: f(k), inputs[k], dout), g)
            for k, g in enumerate(f(None))]


# ------------------------------------------------------------------- CS231n notebook values
def test_rnn_step_forward_matches_the_notebook():
    N, D, H = 3, 10, 4
    x = np.linspace(-0.4, 0.7, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.2, 0.5, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.1, 0.9, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.3, 0.7, num=H * H).reshape(H, H)
    b = np.linspace(-0.2, 0.4, num=H)
    next_h, _ = rnn_step_forward(x, prev_h, Wx, Wh, b)
    expected = np.asarray([[-0.58172089, -0.50182032, -0.41232771, -0.31410098],
                           [0.66854692, 0.79562378, 0.87755553, 0.92795967],
                           [0.97934501, 0.99144213, 0.99646691, 0.99854353]])
    assert rel_error(next_h, expected) < 1e-7


def test_rnn_forward_matches_the_notebook_and_the_looped_twin():
    N, T, D, H = 2, 3, 4, 5
    x = np.linspace(-0.1, 0.3, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.3, 0.1, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.4, num=D * H).reshape(D, H)
    Wh = np.linspace(-0.4, 0.1, num=H * H).reshape(H, H)
    b = np.linspace(-0.7, 0.1, num=H)
    h, _ = rnn_forward(x, h0, Wx, Wh, b)
    expected = np.asarray([
        [[-0.42070749, -0.27279261, -0.11074945, 0.05740409, 0.22236251],
         [-0.39525808, -0.22554661, -0.0409454, 0.14649412, 0.32397316],
         [-0.42305111, -0.24223728, -0.04287027, 0.15997045, 0.35014525]],
        [[-0.55857474, -0.39065825, -0.19198182, 0.02378408, 0.23735671],
         [-0.27150199, -0.07088804, 0.13562939, 0.33099728, 0.50158768],
         [-0.51014825, -0.30524429, -0.06755202, 0.17806392, 0.40333043]]])
    assert rel_error(h, expected) < 1e-7
    looped, _ = get_impl("rnn_sequence_forward", "naive")(x, h0, Wx, Wh, b)
    np.testing.assert_allclose(h, looped, rtol=1e-13)


def test_lstm_matches_the_notebook_and_the_looped_twin():
    N, D, H = 3, 4, 5
    x = np.linspace(-0.4, 1.2, num=N * D).reshape(N, D)
    prev_h = np.linspace(-0.3, 0.7, num=N * H).reshape(N, H)
    prev_c = np.linspace(-0.4, 0.9, num=N * H).reshape(N, H)
    Wx = np.linspace(-2.1, 1.3, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.7, 2.2, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.3, 0.7, num=4 * H)
    next_h, next_c, _ = lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b)
    expected_h = np.asarray([[0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
                             [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
                             [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]])
    expected_c = np.asarray([[0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
                             [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
                             [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]])
    assert rel_error(next_h, expected_h) < 5e-8 and rel_error(next_c, expected_c) < 5e-8
    looped = get_impl("lstm_cell_forward", "naive")(x @ Wx + prev_h @ Wh + b, prev_c)
    np.testing.assert_allclose(next_h, looped[0], rtol=1e-13)
    np.testing.assert_allclose(next_c, looped[1], rtol=1e-13)


def test_lstm_forward_matches_the_notebook():
    N, D, H, T = 2, 5, 4, 3
    x = np.linspace(-0.4, 0.6, num=N * T * D).reshape(N, T, D)
    h0 = np.linspace(-0.4, 0.8, num=N * H).reshape(N, H)
    Wx = np.linspace(-0.2, 0.9, num=4 * D * H).reshape(D, 4 * H)
    Wh = np.linspace(-0.3, 0.6, num=4 * H * H).reshape(H, 4 * H)
    b = np.linspace(0.2, 0.7, num=4 * H)
    h, _ = lstm_forward(x, h0, Wx, Wh, b)
    expected = np.asarray([
        [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
         [0.11287491, 0.12146228, 0.13018446, 0.13902939],
         [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
        [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
         [0.6704845, 0.69350089, 0.71486014, 0.7346449],
         [0.81733511, 0.83677871, 0.85403753, 0.86935314]]])
    assert rel_error(h, expected) < 1e-7


# ------------------------------------------------------------------- numerical gradients
def test_rnn_step_backward_matches_numerical_gradients(rng):
    x, h = rng.standard_normal((4, 5)), rng.standard_normal((4, 6))
    Wx, Wh, b = _weights(rng, 5, 6, 1)
    dnext_h = rng.standard_normal((4, 6))
    inputs = [x, h, Wx, Wh, b]

    def f(k):
        out, cache = rnn_step_forward(*inputs)
        return out if k is not None else rnn_step_backward(dnext_h, cache)

    assert max(_grad_errors(f, inputs, dnext_h)) < 1e-7


def test_lstm_step_backward_matches_numerical_gradients(rng):
    x, h, c = rng.standard_normal((3, 5)), rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    Wx, Wh, b = _weights(rng, 5, 4, 4)
    dnext_h, dnext_c = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    inputs = [x, h, c, Wx, Wh, b]

    def loss_grads():
        _, _, cache = lstm_step_forward(*inputs)
        return lstm_step_backward(dnext_h, dnext_c, cache)

    def scalar(_):
        next_h, next_c, _ = lstm_step_forward(*inputs)
        return np.sum(next_h * dnext_h) + np.sum(next_c * dnext_c)

    from fastnn.gradient_check import eval_numerical_gradient
    for k, grad in enumerate(loss_grads()):
        numeric = eval_numerical_gradient(scalar, inputs[k], verbose=False)
        assert rel_error(numeric, grad) < 1e-7, k


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 4, 1, 2)])
def test_rnn_backward_matches_numerical_gradients(rng, shape):
    n, t, d, h = shape
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h))
    Wx, Wh, b = _weights(rng, d, h, 1)
    dh = rng.standard_normal((n, t, h))
    inputs = [x, h0, Wx, Wh, b]

    def f(k):
        out, cache = rnn_forward(*inputs)
        return out if k is not None else rnn_backward(dh, cache)

    assert max(_grad_errors(f, inputs, dh)) < 1e-7


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 4, 1, 2)])
def test_lstm_backward_matches_numerical_gradients(rng, shape):
    n, t, d, h = shape
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h))
    Wx, Wh, b = _weights(rng, d, h, 4)
    dh = rng.standard_normal((n, t, h))
    inputs = [x, h0, Wx, Wh, b]

    def f(k):
        out, cache = lstm_forward(*inputs)
        return out if k is not None else lstm_backward(dh, cache)

    assert max(_grad_errors(f, inputs, dh)) < 1e-7


def test_lstm_c0_gradient_flows_through_the_sequence(rng):
    # with c0 given, h depends on it; dc0 is not returned (CS231n), but h0's gradient is exact
    x, h0, c0 = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    Wx, Wh, b = _weights(rng, 2, 3, 4)
    dh = rng.standard_normal((2, 3, 3))
    out, cache = lstm_forward(x, h0, Wx, Wh, b, c0=c0)
    numeric = eval_numerical_gradient_array(lambda _: lstm_forward(x, h0, Wx, Wh, b, c0=c0)[0],
                                            h0, dh)
    assert rel_error(numeric, lstm_backward(dh, cache)[1]) < 1e-7
    assert not np.allclose(out, lstm_forward(x, h0, Wx, Wh, b)[0])


# ------------------------------------------------------------------------- torch oracle
def _torch_lstm(torch, Wx, Wh, b, d, h):
    """A torch.nn.LSTM carrying our weights (gate order i, f, o, g -> torch's i, f, g, o)."""
    lstm = torch.nn.LSTM(d, h, batch_first=True).double()
    perm = np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]  # torch row r holds our column perm[r]
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(Wx[:, perm].T.copy()))
        lstm.weight_hh_l0.copy_(torch.from_numpy(Wh[:, perm].T.copy()))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b[perm]))
        lstm.bias_hh_l0.zero_()
    return lstm, perm


@pytest.mark.parametrize("shape", [(3, 5, 4, 6), (1, 1, 1, 1)])
def test_lstm_matches_torch_forward_and_autograd(rng, shape):
    torch = pytest.importorskip("torch")
    n, t, d, h = shape
    x, h0, c0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h)), rng.standard_normal((n, h))
    Wx, Wh, b = _weights(rng, d, h, 4)
    dh = rng.standard_normal((n, t, h))
    ours, cache = lstm_forward(x, h0, Wx, Wh, b, c0=c0)
    dx, dh0, dWx, dWh, db = lstm_backward(dh, cache)

    lstm, perm = _torch_lstm(torch, Wx, Wh, b, d, h)
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0)[None].requires_grad_(True)
    out, (h_last, c_last) = lstm(xt, (h0t, torch.from_numpy(c0)[None]))
    out.backward(torch.from_numpy(dh))
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-12, atol=1e-13)
    h_t, c_t = lstm_last_state(cache)
    np.testing.assert_allclose(h_t, h_last[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c_t, c_last[0].detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, h0t.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWx[:, perm], lstm.weight_ih_l0.grad.numpy().T, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(dWh[:, perm], lstm.weight_hh_l0.grad.numpy().T, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(db[perm], lstm.bias_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_lstm_float32_matches_torch_float32(rng):
    torch = pytest.importorskip("torch")
    n, t, d, h = 4, 6, 5, 8
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h))
    Wx, Wh, b = _weights(rng, d, h, 4)
    lstm, _ = _torch_lstm(torch, Wx, Wh, b, d, h)
    lstm = lstm.float()
    f32 = [a.astype(np.float32) for a in (x, h0, Wx, Wh, b)]
    ours, _ = lstm_forward(*f32)
    assert ours.dtype == np.float32
    zeros = torch.zeros(1, n, h)
    theirs = lstm(torch.from_numpy(f32[0]), (torch.from_numpy(f32[1])[None], zeros))[0]
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_rnn_matches_torch_forward_and_autograd(rng):
    torch = pytest.importorskip("torch")
    n, t, d, h = 3, 4, 5, 6
    x, h0 = rng.standard_normal((n, t, d)), rng.standard_normal((n, h))
    Wx, Wh, b = _weights(rng, d, h, 1)
    dh = rng.standard_normal((n, t, h))
    ours, cache = rnn_forward(x, h0, Wx, Wh, b)
    dx, dh0, dWx, dWh, db = rnn_backward(dh, cache)
    rnn = torch.nn.RNN(d, h, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(Wx.T.copy()))
        rnn.weight_hh_l0.copy_(torch.from_numpy(Wh.T.copy()))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b))
        rnn.bias_hh_l0.zero_()
    xt = torch.from_numpy(x).requires_grad_(True)
    h0t = torch.from_numpy(h0)[None].requires_grad_(True)
    out, h_last = rnn(xt, h0t)
    out.backward(torch.from_numpy(dh))
    np.testing.assert_allclose(ours, out.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(rnn_last_state(cache), h_last[0].detach().numpy(), rtol=1e-12)
    for mine, theirs in ((dx, xt.grad), (dh0, h0t.grad[0]), (dWx, rnn.weight_ih_l0.grad.T),
                         (dWh, rnn.weight_hh_l0.grad.T), (db, rnn.bias_ih_l0.grad)):
        np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------- truncated BPTT, dtypes
def test_windows_carrying_the_state_equal_one_long_sequence(rng):
    x, h0 = rng.standard_normal((2, 7, 3)), rng.standard_normal((2, 4))
    Wx, Wh, b = _weights(rng, 3, 4, 4)
    whole, _ = lstm_forward(x, h0, Wx, Wh, b)
    first, cache = lstm_forward(x[:, :3], h0, Wx, Wh, b)
    h_t, c_t = lstm_last_state(cache)
    second, _ = lstm_forward(x[:, 3:], h_t, Wx, Wh, b, c0=c_t)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-13)
    rWx, rWh, rb = _weights(rng, 3, 4, 1)
    whole, _ = rnn_forward(x, h0, rWx, rWh, rb)
    first, cache = rnn_forward(x[:, :5], h0, rWx, rWh, rb)
    second, _ = rnn_forward(x[:, 5:], rnn_last_state(cache), rWx, rWh, rb)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-13)


def test_last_state_is_a_copy(rng):
    x, h0 = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 4))
    _, cache = lstm_forward(x, h0, *_weights(rng, 3, 4, 4))
    h_t, c_t = lstm_last_state(cache)
    before = h_t.copy(), c_t.copy()
    h_t += 1
    c_t += 1
    np.testing.assert_array_equal(lstm_last_state(cache)[0], before[0])
    np.testing.assert_array_equal(lstm_last_state(cache)[1], before[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_and_gradients_keep_the_input_dtype(rng, dtype):
    x, h0 = rng.standard_normal((2, 3, 4)).astype(dtype), rng.standard_normal((2, 5)).astype(dtype)
    for gates, forward, backward in ((4, lstm_forward, lstm_backward),
                                     (1, rnn_forward, rnn_backward)):
        weights = [w.astype(dtype) for w in _weights(rng, 4, 5, gates)]
        h, cache = forward(x, h0, *weights)
        assert h.dtype == dtype
        assert all(g.dtype == dtype for g in backward(np.ones_like(h), cache))


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("forward, gates", [(lstm_forward, 4), (rnn_forward, 1)])
def test_bad_sequence_input_names_the_argument(rng, forward, gates):
    x, h0 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5))
    Wx, Wh, b = _weights(rng, 4, 5, gates)
    cases = [
        ("x", {"x": x[:, :0]}),                       # T = 0
        ("x", {"x": x[0]}),                           # 2-D
        ("h0", {"h0": h0[:1]}),
        ("h0", {"h0": h0[:, :-1]}),
        ("Wx", {"Wx": Wx[:-1]}),
        ("Wh", {"Wh": Wh[:, :-1]}),
        ("b", {"b": b[:-1]}),
        ("x", {"x": x.astype(str)}),
        ("Wh", {"Wh": Wh.astype(complex)}),
    ]
    for name, change in cases:
        args = {"x": x, "h0": h0, "Wx": Wx, "Wh": Wh, "b": b, **change}
        with pytest.raises((ValueError, TypeError), match=name):
            forward(**args)


def test_bad_step_input_and_caches_name_the_argument(rng):
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    Wx, Wh, b = _weights(rng, 3, 4, 4)
    with pytest.raises(ValueError, match="prev_c"):
        lstm_step_forward(x, h, c[:, :2], Wx, Wh, b)
    with pytest.raises(ValueError, match="prev_h"):
        rnn_step_forward(x, h[:1], Wx[:, :4], Wh[:, :4], b[:4])
    with pytest.raises(ValueError, match="Wx"):
        rnn_step_forward(x, h, Wx, Wh[:, :4], b[:4])
    _, _, cache = lstm_step_forward(x, h, c, Wx, Wh, b)
    with pytest.raises(ValueError, match="dnext_c"):
        lstm_step_backward(h, c[:1], cache)
    with pytest.raises((ValueError, TypeError), match="cache"):
        lstm_step_backward(h, c, cache[:3])
    _, cache = lstm_forward(rng.standard_normal((2, 3, 3)), h, Wx, Wh, b)
    with pytest.raises(ValueError, match="dh"):
        lstm_backward(np.zeros((2, 2, 4)), cache)
    broken = list(cache)
    broken[5] = broken[5][:, :, :-1]  # gates cut short
    with pytest.raises(ValueError, match="cache"):
        lstm_backward(np.zeros((2, 3, 4)), tuple(broken))
    with pytest.raises((ValueError, TypeError), match="cache"):
        rnn_backward(np.zeros((2, 3, 4)), cache)
    with pytest.raises((ValueError, TypeError), match="cache"):
        lstm_last_state(None)
