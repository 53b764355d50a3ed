"""Models: k-nearest neighbours, linear classifiers, and nets with a ``params`` dict and ``loss``."""

from fastnn.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from fastnn.classifiers.knn import KNearestNeighbor
from fastnn.classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax
from fastnn.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
from fastnn.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = [
    "FullyConnectedNet",
    "KNearestNeighbor",
    "LinearClassifier",
    "LinearSVM",
    "Softmax",
    "TwoLayerNet",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "svm_loss_naive",
    "svm_loss_vectorized",
]
