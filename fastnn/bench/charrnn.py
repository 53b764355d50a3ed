"""``fastnn bench charrnn``: one training step of the character language model.

The step of ``fastnn train charrnn``: embedding 64, LSTM 256, a window of 100 characters for
64 streams, float32: forward, loss, backward (:class:`fastnn.classifiers.CharRNN`), gradient
clipping by global norm (:func:`fastnn.optim.clip_by_global_norm`) and an Adam update of every
parameter in place. ``--compare`` adds the same model in PyTorch (``nn.Embedding`` +
``nn.LSTM(batch_first=True)`` + ``nn.Linear``, cross-entropy, ``clip_grad_norm_``,
``torch.optim.Adam``) with ``torch.set_num_threads(fastnn.get_num_threads())``.

Both sides carry the hidden and cell state from step to step (truncated BPTT), as training does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastnn.bench import BenchRow, limit_peer_threads, register_suite, time_call

SHAPE = {"batch": 64, "seq": 100, "embed": 64, "hidden": 256, "vocab": 113}
QUICK_SHAPE = {"batch": 8, "seq": 20, "embed": 16, "hidden": 32, "vocab": 50}
LEARNING_RATE = 2e-3
CLIP = 5.0


def make_batch(batch: int, seq: int, vocab: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random character windows and their next characters (int64)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (batch, seq + 1))
    return ids[:, :-1], ids[:, 1:]


def fastnn_step(shape: dict) -> Callable[[], float]:
    """A closure running one fastnn training step; returns the loss."""
    from fastnn import optim
    from fastnn.classifiers import CharRNN

    vocab = "".join(chr(0x21 + i) for i in range(shape["vocab"]))
    model = CharRNN(vocab, wordvec_dim=shape["embed"], hidden_dim=shape["hidden"], seed=0)
    X, y = make_batch(shape["batch"], shape["seq"], shape["vocab"])
    configs = {k: {"learning_rate": LEARNING_RATE} for k in model.params}

    def step() -> float:
        loss, grads = model.loss(X, y)
        grads, _ = optim.clip_by_global_norm(grads, CLIP)
        for k, w in model.params.items():
            _, configs[k] = optim.adam(w, grads[k], configs[k], out=w)
        model.initial_state = model.final_state  # carried, as in truncated BPTT
        return loss

    return step


def torch_step(shape: dict) -> Callable[[], float] | None:
    """The same step in PyTorch (None when torch is missing)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    V, E, H = shape["vocab"], shape["embed"], shape["hidden"]
    embedding = torch.nn.Embedding(V, E)
    lstm = torch.nn.LSTM(E, H, batch_first=True)
    linear = torch.nn.Linear(H, V)
    params = [*embedding.parameters(), *lstm.parameters(), *linear.parameters()]
    opt = torch.optim.Adam(params, lr=LEARNING_RATE)
    X, y = (torch.from_numpy(a) for a in make_batch(shape["batch"], shape["seq"], V))
    state = [None]

    def step() -> float:
        opt.zero_grad()
        out, (h, c) = lstm(embedding(X), state[0])
        loss = torch.nn.functional.cross_entropy(linear(out).reshape(-1, V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        state[0] = (h.detach(), c.detach())
        return float(loss)

    return step


@register_suite("charrnn")
def suite(compare: bool = False, quick: bool = False) -> list[BenchRow]:
    """One CharRNN training step (float32): fastnn (vs torch)."""
    s = QUICK_SHAPE if quick else SHAPE
    label = (f"batch={s['batch']} seq={s['seq']} embed={s['embed']} LSTM {s['hidden']} "
             f"V={s['vocab']} float32")
    # matrix products only: LSTM forward 2 N T (E + H) 4H, the vocabulary projection
    # 2 N T H V; the backward pass does twice the forward's
    n, t = s["batch"], s["seq"]
    flops = 3 * (2.0 * n * t * (s["embed"] + s["hidden"]) * 4 * s["hidden"]
                 + 2.0 * n * t * s["hidden"] * s["vocab"])
    repeat = 3 if quick else 5
    steps = [("fastnn CharRNN + clip + adam", fastnn_step(s))]
    if compare:
        limit_peer_threads()
        peer = torch_step(s)
        if peer is not None:
            steps.append(("torch Embedding+LSTM+Linear + clip + Adam", peer))
    return [BenchRow("charrnn training step", label, name, time_call(step, repeat=repeat),
                     flops) for name, step in steps]
