"""``CaptioningSolver``: the Solver for image-captioning models (CS231n ``captioning_solver.py``).

Same keyword arguments and training loop as :class:`fastnn.solver.Solver` (it is one, through
its hooks), on CS231n's captioning data dict:

- ``train_captions`` (N, T) int word ids (``<START> ... <END> <NULL> ...``),
  ``train_image_idxs`` (N,) the image of every caption, ``train_features`` (N_images, D);
- ``val_captions``, ``val_image_idxs``, ``val_features`` likewise;
- ``word_to_idx`` / ``idx_to_word`` (optional here; the model has its own).

Minibatches are ``batch_size`` captions drawn with replacement (CS231n's
``sample_coco_minibatch``), each with its image's features; the model is called as
``model.loss(features, captions)``. Each evaluation reports ``train_loss`` and ``val_loss`` (on
``num_train_samples``/``num_val_samples`` captions) and ``val_bleu1``, the corpus BLEU-1 of
greedy captions of up to ``num_val_samples`` validation images against their first reference
(and, when ``data`` has ``val_labels`` and ``class_words`` as the generated data sets of
:mod:`fastnn.data.captions` do, ``val_class_word``: the fraction of those captions naming the
image's class); the best model is the one with the lowest ``val_loss``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fastnn._solver import Solver
from fastnn._validation import check_array
from fastnn.data.captions import bleu1, class_word_accuracy

__all__ = ["CaptioningSolver"]

_SPLIT_KEYS = ("captions", "image_idxs", "features")
_EVAL_CAPTIONS = 1000  # default captions scored per evaluation when num_*_samples is None
_EVAL_BATCH = 500


class CaptioningSolver(Solver):
    """Train a captioning model (``loss(features, captions)``, ``sample(features)``).

    Parameters
    ----------
    model : CaptioningRNN
    data : dict
        CS231n's captioning data (see the module docstring).
    **kwargs
        The :class:`~fastnn.solver.Solver` keyword arguments (``augment`` is not used).

    Attributes
    ----------
    history : list of dict
        As the Solver's, with ``train_loss``, ``val_loss`` and ``val_bleu1``.
    """

    selection_metric = "val_loss"
    higher_is_better = False

    def _check_data(self, data: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a captioning data dict, got {type(data).__name__}")
        arrays = {}
        for split in ("train", "val"):
            missing = [f"{split}_{k}" for k in _SPLIT_KEYS if f"{split}_{k}" not in data]
            if missing:
                raise ValueError(f"data is missing {', '.join(map(repr, missing))} (CS231n's "
                                 f"captioning data dict)")
            captions = check_array(data[f"{split}_captions"], f"data['{split}_captions']",
                                   ndim=2, dtype="int")
            idxs = check_array(data[f"{split}_image_idxs"], f"data['{split}_image_idxs']",
                               ndim=1, dtype="int")
            features = check_array(data[f"{split}_features"], f"data['{split}_features']",
                                   ndim=2)
            if captions.shape[1] < 2:
                raise ValueError(f"data['{split}_captions'] must have T >= 2 words per caption "
                                 f"(<START> and at least one more), got shape {captions.shape}")
            if len(idxs) != len(captions):
                raise ValueError(f"data['{split}_captions'] has {len(captions)} captions but "
                                 f"data['{split}_image_idxs'] has {len(idxs)} entries")
            if idxs.min() < 0 or idxs.max() >= len(features):
                raise ValueError(f"data['{split}_image_idxs'] must index the {len(features)} "
                                 f"rows of data['{split}_features'], got values in "
                                 f"[{idxs.min()}, {idxs.max()}]")
            arrays[split] = (captions, idxs, features)
        self.train_features = arrays["train"][2]
        self.val_features = arrays["val"][2]
        # optional (the generated data sets of fastnn.data.captions): the class of every
        # validation image and the class words, for the class-word accuracy of each evaluation
        self._val_labels, self._class_words = None, data.get("class_words")
        if "val_labels" in data and self._class_words is not None:
            self._val_labels = check_array(data["val_labels"], "data['val_labels']", ndim=1,
                                           dtype="int")
            if len(self._val_labels) != len(self.val_features):
                raise ValueError(f"data['val_labels'] has {len(self._val_labels)} labels but "
                                 f"data['val_features'] has {len(self.val_features)} images")
        # captions are the examples; their image indices stand where labels would
        return arrays["train"][0], arrays["train"][1], arrays["val"][0], arrays["val"][1]

    def _check_labels_against_model(self) -> None:
        """Word ids must be in the model's vocabulary, features of its input size."""
        vocab_size = len(getattr(self.model, "word_to_idx", ()))
        input_dim = getattr(self.model, "input_dim", None)
        for split, captions, features in (("train", self.X_train, self.train_features),
                                          ("val", self.X_val, self.val_features)):
            if vocab_size and (captions.min() < 0 or captions.max() >= vocab_size):
                raise ValueError(f"data['{split}_captions'] must hold word ids in [0, "
                                 f"{vocab_size}) (the model's vocabulary), got values in "
                                 f"[{captions.min()}, {captions.max()}]")
            if input_dim is not None and features.shape[1] != input_dim:
                raise ValueError(f"data['{split}_features'] has {features.shape[1]} features "
                                 f"per image but the model's input_dim is {input_dim}")

    def _batch(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        mask = self._minibatch(t)
        captions = self.X_train[mask]
        return self.train_features[self.y_train[mask]], captions

    def _split_loss(self, captions: np.ndarray, idxs: np.ndarray, features: np.ndarray,
                    num_samples: int | None) -> float:
        n = len(captions)
        limit = _EVAL_CAPTIONS if num_samples is None else num_samples
        if n > limit:
            mask = self._rng.integers(0, n, limit)
            captions, idxs = captions[mask], idxs[mask]
        total, count = 0.0, 0
        for i in range(0, len(captions), _EVAL_BATCH):
            c = captions[i:i + _EVAL_BATCH]
            loss, _ = self.model.loss(features[idxs[i:i + _EVAL_BATCH]], c)
            total += float(loss) * len(c)
            count += len(c)
        return total / count

    def _epoch_scores(self) -> dict[str, float]:
        scores = {
            "train_loss": self._split_loss(self.X_train, self.y_train, self.train_features,
                                           self.num_train_samples),
            "val_loss": self._split_loss(self.X_val, self.y_val, self.val_features,
                                         self.num_val_samples),
        }
        sample = getattr(self.model, "sample", None)
        if callable(sample):
            limit = _EVAL_CAPTIONS if self.num_val_samples is None else self.num_val_samples
            # the first caption of each of the first `limit` validation images
            _, first = np.unique(self.y_val, return_index=True)
            first = first[:limit]
            references = self.X_val[first][:, 1:]
            generated = sample(self.val_features[self.y_val[first]],
                               max_length=references.shape[1])
            null = getattr(self.model, "word_to_idx", {}).get("<NULL>", 0)
            end = getattr(self.model, "word_to_idx", {}).get("<END>", None)
            scores["val_bleu1"] = bleu1(generated, references, null=null, end=end)
            if self._val_labels is not None:
                scores["val_class_word"] = class_word_accuracy(
                    generated, self._val_labels[self.y_val[first]], self.model.word_to_idx,
                    self._class_words)
        return scores
