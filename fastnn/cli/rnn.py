"""Recurrent models on the command line: ``fastnn train lstm|charrnn|caption``, ``fastnn sample``
and ``fastnn caption``.

Training goes through the runner every ``fastnn train MODEL`` shares
(:mod:`fastnn.cli._training`: per-epoch table, newest checkpoint, ``--resume``, ``model.npz``,
``history.json``, ``training.png``). Examples::

    fastnn train lstm --dataset fashion-mnist --epochs 10 --out lstm-run
    fastnn evaluate lstm-run/model.npz --dataset fashion-mnist
    fastnn train charrnn --text corpus.txt --out char-run    # default text: fortunes.txt
    fastnn sample char-run/model.npz --length 500 --temperature 0.8 --prefix "The "
    fastnn train caption --dataset fashion-mnist --epochs 5 --out caption-run
    fastnn caption caption-run/model.npz --num 10
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from fastnn.cli._options import (
    add_data_options,
    add_progress_option,
    limit_blas_threads,
    non_negative_float,
    positive_float,
    positive_int,
    split_validation,
)
from fastnn.cli._training import add_training_options, images_to_model_layout, run_training

CELLS = ("lstm", "rnn")
#: Gradient clipping (global norm) on by default: recurrent nets occasionally explode.
DEFAULT_GRAD_CLIP = 5.0


def _fraction(text: str) -> float:
    """argparse type of ``--val-fraction``: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


# --------------------------------------------------------------------------- train lstm


def run_train_lstm(args: argparse.Namespace) -> int:
    """Train a SequenceClassifier reading the images row by row.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn train lstm`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.classifiers.sequence import SequenceClassifier
    from fastnn.data import load_dataset
    from fastnn.metrics import model_accuracy
    from fastnn.preprocessing import ScaleAndCenter

    limit_blas_threads()
    started = time.perf_counter()
    dtype = np.dtype(args.dtype).type
    data = load_dataset(args.dataset, root=args.data_dir)
    X_tr, y_tr, X_val, y_val = split_validation(data["X_train"], data["y_train"],
                                                args.val_size, args.seed)
    prep = ScaleAndCenter(1.0 / 255.0).fit(X_tr)
    H, W, C = X_tr.shape[1:]
    meta = {**prep.to_metadata(), "layout": "nchw", "dataset": args.dataset,
            "class_names": list(data["class_names"])}
    # flat rows -> (N, C, H, W): the model reads row t as the W * C values of image row t
    X_tr, X_val, X_test = (images_to_model_layout(prep.transform(X, dtype), meta)
                           for X in (X_tr, X_val, data["X_test"]))
    model = SequenceClassifier(W * C, hidden_dim=args.hidden,
                               num_classes=len(data["class_names"]), cell_type=args.cell,
                               reg=args.reg, dtype=dtype, seed=args.seed)
    run_training(
        args, model, {"X_train": X_tr, "y_train": y_tr, "X_val": X_val, "y_val": y_val},
        metadata=meta,
        describe=f"data: {args.dataset} read row by row ({H} steps of {W * C} values), train "
                 f"{X_tr.shape[0]}, val {X_val.shape[0]}, test {X_test.shape[0]}",
        evaluate_test=lambda best: {"test accuracy": model_accuracy(best, X_test,
                                                                    data["y_test"])},
        started=started,
    )
    return 0


# --------------------------------------------------------------------------- train charrnn


def run_train_charrnn(args: argparse.Namespace) -> int:
    """Train a CharRNN on a UTF-8 text with truncated backpropagation through time.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn train charrnn`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.classifiers.char_rnn import CharRNN
    from fastnn.data.text import load_text_dataset
    from fastnn.sequence_solver import LanguageModelSolver

    limit_blas_threads()
    started = time.perf_counter()
    data = load_text_dataset(args.text, val_fraction=args.val_fraction)
    if len(data["val"]) < args.seq_length + 1:
        raise ValueError(f"--val-fraction {args.val_fraction} holds out {len(data['val'])} "
                         f"characters of {data['path']}; at least --seq-length + 1 = "
                         f"{args.seq_length + 1} are needed for a validation window")
    model = CharRNN(data["vocab"], wordvec_dim=args.embed, hidden_dim=args.hidden,
                    cell_type=args.cell, reg=args.reg, dtype=np.dtype(args.dtype).type,
                    seed=args.seed)
    unigram = _unigram_loss(data["train"], data["val"], len(data["vocab"]))
    solver = run_training(
        args, model, data,
        metadata={"text": data["path"], "val_fraction": args.val_fraction,
                  "seq_length": args.seq_length},
        describe=f"text: {data['path']}: {len(data['train'])} training and {len(data['val'])} "
                 f"validation characters, {len(data['vocab'])} distinct (unigram baseline "
                 f"{unigram:.3f} nats/char); windows {args.batch_size} x {args.seq_length}; "
                 f"val_loss in nats per character",
        solver_class=LanguageModelSolver, solver_kwargs={"seq_length": args.seq_length},
        started=started,
    )
    for temperature in (args.temperature, 1.0) if args.temperature != 1.0 else (1.0,):
        text = solver.model.sample(args.sample_length, temperature=temperature, seed=args.seed)
        print(f"--- sample at temperature {temperature:g}:\n{text}\n---")
    return 0


def _unigram_loss(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Validation loss (nats/char) of the training text's character frequencies (add-one)."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    p = counts / counts.sum()
    return float(-np.log(p[val]).mean()) if len(val) else float("nan")


# --------------------------------------------------------------------------- train caption


def _caption_data(args_or_meta: Any) -> dict[str, Any]:
    """The captioned data set of a ``train caption`` run (rebuilt identically from metadata)."""
    from fastnn.data.captions import load_caption_dataset

    get = (args_or_meta.get if isinstance(args_or_meta, dict)
           else lambda k, d=None: getattr(args_or_meta, k, d))
    return load_caption_dataset(get("dataset"), root=get("data_dir"),
                                num_train=get("num_train"), num_val=get("num_val"),
                                features=get("features"), feature_dim=get("feature_dim"))


def _caption_scores(model: Any, data: dict[str, Any]) -> dict[str, float]:
    from fastnn.data.captions import bleu1, class_word_accuracy

    generated = model.sample(data["val_features"], max_length=data["val_captions"].shape[1])
    w2i = data["word_to_idx"]
    return {
        "class-word accuracy": class_word_accuracy(generated, data["val_labels"], w2i,
                                                   data["class_words"]),
        "BLEU-1": bleu1(generated, data["val_captions"][:, 1:], null=w2i["<NULL>"],
                        end=w2i["<END>"]),
    }


def run_train_caption(args: argparse.Namespace) -> int:
    """Train a CaptioningRNN on generated captions of real Fashion-MNIST images.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn train caption`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.captioning_solver import CaptioningSolver
    from fastnn.classifiers.captioning_rnn import CaptioningRNN

    if args.dataset not in ("sample", "fashion-mnist"):
        raise ValueError(f"--dataset must be sample or fashion-mnist for captions (the "
                         f"generator measures objects on a dark background), got "
                         f"{args.dataset}")
    limit_blas_threads()
    started = time.perf_counter()
    data = _caption_data(args)
    np.random.seed(args.seed)  # CaptioningRNN draws its weights from the global state (CS231n)
    model = CaptioningRNN(data["word_to_idx"], input_dim=data["train_features"].shape[1],
                          wordvec_dim=args.wordvec, hidden_dim=args.hidden, cell_type=args.cell,
                          dtype=np.dtype(args.dtype).type, reg=args.reg)
    meta = {"caption_data": True, "dataset": args.dataset, "num_train": args.num_train,
            "num_val": args.num_val, "features": args.features, "feature_dim": args.feature_dim}
    run_training(
        args, model, data, metadata=meta,
        describe=f"captions of {args.dataset}: {len(data['train_captions'])} training and "
                 f"{len(data['val_captions'])} held-out images, {len(data['word_to_idx'])} "
                 f"words, features {args.features} ({data['train_features'].shape[1]})",
        evaluate_test=lambda best: _caption_scores(best, data),
        solver_class=CaptioningSolver, started=started,
    )
    return 0


# --------------------------------------------------------------------------- sample, caption


def _load(path: str, cls_name: str, command: str) -> tuple[Any, dict[str, Any]]:
    from fastnn.serialization import load_model

    model, meta = load_model(path, with_metadata=True)
    if type(model).__name__ != cls_name:
        raise ValueError(f"{path}: holds a {type(model).__name__}; `fastnn {command}` needs a "
                         f"{cls_name} (written by `fastnn train "
                         f"{'charrnn' if cls_name == 'CharRNN' else 'caption'}`)")
    return model, meta


def run_sample(args: argparse.Namespace) -> int:
    """Print text sampled from a saved CharRNN.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn sample`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    model, _ = _load(args.checkpoint, "CharRNN", "sample")
    try:
        model.encode(args.prefix)
    except ValueError as exc:
        raise ValueError(f"--prefix: {exc}") from None
    print(model.sample(args.length, temperature=args.temperature, prefix=args.prefix,
                       seed=args.seed))
    return 0


def run_caption(args: argparse.Namespace) -> int:
    """Caption held-out images with a saved CaptioningRNN; print them beside the generated
    ground truth, then the class-word accuracy and BLEU-1 over every held-out image.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``fastnn caption`` options.

    Returns
    -------
    int
        Exit code (0).
    """
    from fastnn.data.captions import captions_to_words

    model, meta = _load(args.checkpoint, "CaptioningRNN", "caption")
    if not meta.get("caption_data"):
        raise ValueError(f"{args.checkpoint}: no caption data set is recorded in its metadata")
    data = _caption_data({**meta, "data_dir": args.data_dir})
    if data["val_features"].shape[1] != model.input_dim:
        raise ValueError(f"{args.checkpoint}: the model reads {model.input_dim} features but "
                         f"the rebuilt data set has {data['val_features'].shape[1]}")
    n = min(args.num, len(data["val_captions"]))
    shown = model.sample(data["val_features"][:n], max_length=data["val_captions"].shape[1],
                         temperature=args.temperature, seed=args.seed)
    truth = captions_to_words(data["val_captions"][:n], data["idx_to_word"])
    for i, (got, want) in enumerate(zip(captions_to_words(shown, data["idx_to_word"]), truth,
                                        strict=True)):
        print(f"{i:4d}  generated: {got:<42} truth: {want}")
    scores = _caption_scores(model, data)
    print(f"held-out images: {len(data['val_captions'])}; greedy captions: "
          + "; ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return 0


# --------------------------------------------------------------------------- registration


def register_train(models: argparse._SubParsersAction) -> None:
    """Add ``fastnn train lstm``, ``fastnn train charrnn`` and ``fastnn train caption``.

    Parameters
    ----------
    models : argparse._SubParsersAction
        The ``fastnn train`` model subparsers.
    """
    lstm = models.add_parser("lstm", help="row-by-row LSTM/RNN image classifier "
                                          "(SequenceClassifier)")
    add_data_options(lstm)
    lstm.add_argument("--hidden", type=positive_int, default=128, help="hidden size (128)")
    lstm.add_argument("--cell", default="lstm", choices=CELLS)
    lstm.add_argument("--reg", type=non_negative_float, default=0.0,
                      help="L2 regularisation strength")
    add_training_options(lstm, epochs=10, batch_size=128, lr=2e-3)
    lstm.set_defaults(func=run_train_lstm, grad_clip=DEFAULT_GRAD_CLIP)

    char = models.add_parser("charrnn", help="character language model (CharRNN) on a text")
    char.add_argument("--text", default=None, metavar="PATH",
                      help="UTF-8 text file (default: <data dir>/text/fortunes.txt)")
    char.add_argument("--val-fraction", type=_fraction, default=0.1,
                      help="last fraction of the text held out for validation (0.1)")
    char.add_argument("--seq-length", type=positive_int, default=100,
                      help="time steps per window (truncated BPTT length, 100)")
    char.add_argument("--embed", type=positive_int, default=64, help="embedding size (64)")
    char.add_argument("--hidden", type=positive_int, default=256, help="hidden size (256)")
    char.add_argument("--cell", default="lstm", choices=CELLS)
    char.add_argument("--reg", type=non_negative_float, default=0.0)
    char.add_argument("--sample-length", type=positive_int, default=300,
                      help="characters sampled after training (300)")
    char.add_argument("--temperature", type=positive_float, default=0.8,
                      help="temperature of the sample after training (0.8; one at 1.0 too)")
    # Adam 1e-2 with a cosine decay over 12 passes: on fortunes.txt val_loss 1.5402 after 194 s
    # of training on 2 cores, 1.5343 after 188 s with the later kernels (8 passes: 1.5477 and
    # 1.5501 in two runs of ~130 s, too close to the 1.55 aim; 2e-3 constant: 1.64 after 5)
    add_training_options(char, epochs=12, batch_size=64, lr=1e-2, num_train_samples=1,
                         val_size=False)
    char.set_defaults(func=run_train_charrnn, grad_clip=DEFAULT_GRAD_CLIP, lr_schedule="cosine")

    cap = models.add_parser("caption", help="image captioning (CaptioningRNN) on generated "
                                            "captions of Fashion-MNIST")
    add_data_options(cap)
    cap.add_argument("--num-train", type=positive_int, default=None,
                     help="training images captioned (default all)")
    cap.add_argument("--num-val", type=positive_int, default=1000,
                     help="held-out (test split) images captioned for validation (1000)")
    cap.add_argument("--features", default="pixels", choices=("pixels", "pca"))
    cap.add_argument("--feature-dim", type=positive_int, default=128,
                     help="principal components with --features pca (128)")
    cap.add_argument("--wordvec", type=positive_int, default=128, help="word vector size (128)")
    cap.add_argument("--hidden", type=positive_int, default=256, help="hidden size (256)")
    cap.add_argument("--cell", default="lstm", choices=CELLS)
    cap.add_argument("--reg", type=non_negative_float, default=0.0)
    add_training_options(cap, epochs=5, batch_size=128, lr=3e-3, num_train_samples=1000,
                         val_size=False)
    cap.set_defaults(func=run_train_caption, grad_clip=DEFAULT_GRAD_CLIP)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fastnn sample`` and ``fastnn caption``.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``ArgumentParser.add_subparsers``.
    """
    sample = subparsers.add_parser("sample", help="text sampled from a character model")
    sample.add_argument("checkpoint", help="model.npz (or a checkpoint) of `fastnn train "
                                           "charrnn`")
    sample.add_argument("--length", type=positive_int, default=500)
    sample.add_argument("--temperature", type=positive_float, default=0.8)
    sample.add_argument("--prefix", default="", help="text the model reads first")
    sample.add_argument("--seed", type=int, default=None)
    sample.set_defaults(func=run_sample)

    caption = subparsers.add_parser("caption", help="captions of held-out images from a "
                                                    "captioning model")
    caption.add_argument("checkpoint", help="model.npz (or a checkpoint) of `fastnn train "
                                            "caption`")
    caption.add_argument("--num", type=positive_int, default=10, help="captions shown (10)")
    caption.add_argument("--temperature", type=positive_float, default=None,
                         help="sample the shown captions at this temperature (default greedy)")
    caption.add_argument("--seed", type=int, default=None)
    caption.add_argument("--data-dir", default=None, metavar="DIR",
                         help="where the images are (default: as `fastnn train caption`)")
    add_progress_option(caption)
    caption.set_defaults(func=run_caption)
