"""Class names of the data sets, shared by the loaders and the registry (no imports of either)."""

from __future__ import annotations

__all__ = ["CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "NUM_CLASSES"]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

NUM_CLASSES = 10  # CIFAR-10, MNIST and Fashion-MNIST all have ten classes: labels 0..9
