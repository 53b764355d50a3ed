"""Fuzz-catalogue entries of the recurrent models and the text/caption data helpers.

Kept beside ``tests/_fuzz_catalog.py`` (whose ``build()`` calls :func:`build_rnn`) and written
with its vocabulary: ``A`` arrays, ``L`` labels, ``I`` ints, ``F`` reals, ``C`` choices.
Token-id arrays are ``A`` arrays whose float mutations must be rejected or read as whole numbers;
their time axis is free (``wrong_size_last``: another valid T).
"""

from __future__ import annotations

import numpy as np


def build_rnn(cat) -> None:
    """Add the entries to ``cat.ENTRIES`` (``cat`` is the ``_fuzz_catalog`` module)."""
    from fastnn import classifiers as Cl
    from fastnn.data import captions as Cp
    from fastnn.data import text as Tx

    A, L, I, F, C, Arg = cat.A, cat.L, cat.I, cat.F, cat.C, cat.Arg
    ANY, ERROR, add, kw, method = cat.ANY, cat.ERROR, cat.add, cat.kw, cat.method
    rng_of, randn, labels = cat.rng_of, cat.randn, cat.labels

    def ids(name, **overrides):
        """A (N, T) token-id array: T may change; whole-number floats read as ids."""
        spec = {"wrong_size_last": ANY, "other_float": ANY, "float16": ANY, **overrides}
        return A(name, **spec)

    w2i = {"<NULL>": 0, "<START>": 1, "<END>": 2, "a": 3, "b": 4}
    V = len(w2i)
    cells = C("cell_type", ("rnn", "lstm"))
    seed = I("seed", minimum=0, none=ANY, huge=ANY, list=ANY)

    # ---------------------------------------------------------------- CaptioningRNN
    add("fastnn.classifiers.CaptioningRNN",
        lambda cfg, tmp: {"input_dim": cfg["d"], "wordvec_dim": 3, "hidden_dim": 4,
                          "cell_type": "lstm", "dtype": np.float64, "reg": 0.1},
        lambda a: dict(Cl.CaptioningRNN(w2i, **a).params),
        [I("input_dim"), I("wordvec_dim"), I("hidden_dim"), cells, Arg("dtype", "dtype"),
         F("reg", minimum=0.0)])

    def captioning(cfg, tmp):
        np.random.seed(cfg["seed"] % 2**31)
        r = rng_of(cfg)
        model = Cl.CaptioningRNN(w2i, input_dim=cfg["d"], wordvec_dim=3, hidden_dim=4,
                                 cell_type="lstm", dtype=cfg["dtype"])
        captions = r.integers(0, V, (cfg["n"], 5))
        return {"_self": model, "features": randn(r, (cfg["n"], cfg["d"]), cfg["dtype"]),
                "captions": captions, "max_length": 4, "temperature": 0.7, "seed": 3}

    add("fastnn.classifiers.CaptioningRNN.loss", captioning,
        method("loss", "features", "captions"), [A("features"), ids("captions")], rtol=1e-4)
    add("fastnn.classifiers.CaptioningRNN.sample", captioning,
        method("sample", "features", "max_length", "temperature", "seed"),
        [A("features", n_free=True), I("max_length"), F("temperature", minimum=0.0, min_excl=True,
                                           none=ANY), seed])

    # ---------------------------------------------------------------- SequenceClassifier
    add("fastnn.classifiers.SequenceClassifier",
        lambda cfg, tmp: {"input_dim": cfg["d"], "hidden_dim": 3, "num_classes": cfg["c"],
                          "cell_type": "rnn", "reg": 0.1, "dtype": np.float64, "seed": 1},
        lambda a: dict(Cl.SequenceClassifier(**a).params),
        [I("input_dim"), I("hidden_dim"), I("num_classes"), cells, F("reg", minimum=0.0),
         Arg("dtype", "dtype"), I("seed", minimum=0, none=ANY, huge=ANY, list=ANY)])

    def sequences(cfg, tmp):
        r = rng_of(cfg)
        model = Cl.SequenceClassifier(cfg["d"], hidden_dim=3, num_classes=cfg["c"],
                                      dtype=cfg["dtype"], seed=cfg["seed"])
        return {"_self": model, "X": randn(r, (cfg["n"], 3, cfg["d"]), cfg["dtype"]),
                "y": labels(r, cfg["n"], cfg["c"])}

    # (N, T, D) or images (N, C, H, W): an extra axis is another valid layout
    add("fastnn.classifiers.SequenceClassifier.loss", sequences, method("loss", "X", "y"),
        [A("X", extra_dim=ANY), L("y", **{"None": ANY})],
        num_classes=lambda a: a["_self"].num_classes, rtol=1e-4)

    # ---------------------------------------------------------------- CharRNN
    vocab = "\nabcd"
    add("fastnn.classifiers.CharRNN",
        lambda cfg, tmp: {"wordvec_dim": 3, "hidden_dim": 4, "cell_type": "lstm", "reg": 0.1,
                          "dtype": np.float64, "seed": 2},
        lambda a: dict(Cl.CharRNN(vocab, **a).params),
        [I("wordvec_dim"), I("hidden_dim"), cells, F("reg", minimum=0.0),
         Arg("dtype", "dtype"), I("seed", minimum=0, none=ANY, huge=ANY, list=ANY)])

    def chars(cfg, tmp):
        r = rng_of(cfg)
        model = Cl.CharRNN(vocab, wordvec_dim=3, hidden_dim=4, dtype=cfg["dtype"],
                           seed=cfg["seed"])
        X = r.integers(0, len(vocab), (cfg["n"], cfg["d"] + 1))
        return {"_self": model, "X": X[:, :-1].copy(), "y": X[:, 1:].copy(), "length": 8,
                "temperature": 0.9, "seed": 4}

    # y must have X's shape: a different T of y alone is an error
    add("fastnn.classifiers.CharRNN.loss", chars, method("loss", "X", "y"),
        [ids("X", wrong_size_last=ERROR), ids("y", wrong_size_last=ERROR, **{"None": ANY})], rtol=1e-4)
    add("fastnn.classifiers.CharRNN.sample", chars,
        method("sample", "length", "temperature", "seed"),
        [I("length", minimum=0), F("temperature", minimum=0.0, min_excl=True), seed])

    # ---------------------------------------------------------------- text data
    def text_ids(cfg, tmp):
        r = rng_of(cfg)
        return {"ids": r.integers(0, len(vocab), 40 + cfg["n"]), "val_fraction": 0.2,
                "batch_size": cfg["c"], "seq_length": cfg["d"]}

    one_d = {"extra_dim": ERROR, "drop_dim": ERROR, "wrong_size_first": ANY,
             "wrong_size_last": ANY, "empty": ANY,
             "other_float": ANY, "float16": ANY, "bool": ANY}
    add("fastnn.data.text.decode_text", text_ids, lambda a: Tx.decode_text(a["ids"], vocab),
        [A("ids", **one_d)])
    add("fastnn.data.text.split_text", text_ids, kw(Tx.split_text, "ids", "val_fraction"),
        [A("ids", **{**one_d, "nan": ANY, "inf": ANY, "int8": ANY, "uint64": ANY,
                     "complex": ANY, "object": ANY, "str": ANY}),
         F("val_fraction", minimum=0.0, maximum=1.0, max_excl=True)])
    add("fastnn.data.text.TextStream", text_ids,
        lambda a: list(Tx.TextStream(a["ids"], a["batch_size"], a["seq_length"])),
        [A("ids", **{**one_d, "empty": ERROR}), I("batch_size", huge=ERROR),
         I("seq_length", huge=ERROR)])

    # ---------------------------------------------------------------- captions
    def images(cfg, tmp):
        r = rng_of(cfg)
        x = np.abs(randn(r, (cfg["n"], 6, 5), "float64")) * 100
        caps = r.integers(0, V, (cfg["n"], 4))
        return {"images": x, "captions": caps, "labels": labels(r, cfg["n"], 2)}

    add("fastnn.data.captions.measure_attributes", images,
        kw(Cp.measure_attributes, "images"),
        [A("images", n_free=True, extra_dim=ANY, wrong_size_last=ANY)])
    add("fastnn.data.captions.class_word_accuracy", images,
        lambda a: Cp.class_word_accuracy(a["captions"], a["labels"], w2i, ("a", "b")),
        [ids("captions", empty=ANY), L("labels")], num_classes=lambda a: 2)
