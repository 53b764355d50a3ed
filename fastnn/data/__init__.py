"""Data loaders: CIFAR-10, MNIST/Fashion-MNIST, a packaged real sample, and a registry.

Quick start::

    from fastnn.data import load_dataset
    data = load_dataset("sample")          # works offline, right after pip install
    data = load_dataset("fashion-mnist")   # looks in $FASTNN_DATA, else ~/.fastnn/data, ...
    data["X_train"].shape                  # (60000, 28, 28, 1) float32, values 0..255

The CS231n functions keep their names and return values: :func:`load_CIFAR10`,
:func:`get_CIFAR10_data`. Missing or corrupt files raise :class:`DatasetError`, whose message
starts with the file concerned.
"""

from fastnn.data._errors import DatasetError
from fastnn.data.captions import (
    bleu1,
    class_word_accuracy,
    load_caption_dataset,
    make_caption_dataset,
)
from fastnn.data.cifar import get_CIFAR10_data, load_CIFAR10, load_CIFAR_batch
from fastnn.data.datasets import DATASET_NAMES, load_dataset, load_sample
from fastnn.data.mnist import load_mnist, read_idx
from fastnn.data.registry import (
    DATASETS,
    find_dataset,
    get_data_dir,
    get_dataset_info,
    search_locations,
    verify_dataset,
)
from fastnn.data.text import (
    TextStream,
    build_vocabulary,
    decode_text,
    encode_text,
    load_text_dataset,
    read_text,
    split_text,
)

__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "DatasetError",
    "TextStream",
    "bleu1",
    "build_vocabulary",
    "class_word_accuracy",
    "decode_text",
    "encode_text",
    "find_dataset",
    "get_CIFAR10_data",
    "get_data_dir",
    "get_dataset_info",
    "load_CIFAR10",
    "load_CIFAR_batch",
    "load_caption_dataset",
    "load_dataset",
    "load_mnist",
    "load_sample",
    "load_text_dataset",
    "make_caption_dataset",
    "read_idx",
    "read_text",
    "search_locations",
    "split_text",
    "verify_dataset",
]
