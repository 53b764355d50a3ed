"""Models: k-nearest neighbours, linear classifiers, and nets with a ``params`` dict and ``loss``."""

from fastnn.classifiers.captioning_rnn import CaptioningRNN
from fastnn.classifiers.char_rnn import CharRNN
from fastnn.classifiers.cnn import ConvNet, ThreeLayerConvNet
from fastnn.classifiers.fc_net import FullyConnectedNet, TwoLayerNet
from fastnn.classifiers.knn import KNearestNeighbor
from fastnn.classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax
from fastnn.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized
from fastnn.classifiers.sequence import SequenceClassifier
from fastnn.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized

__all__ = [
    "CaptioningRNN",
    "CharRNN",
    "ConvNet",
    "FullyConnectedNet",
    "KNearestNeighbor",
    "LinearClassifier",
    "LinearSVM",
    "SequenceClassifier",
    "Softmax",
    "ThreeLayerConvNet",
    "TwoLayerNet",
    "softmax_loss_naive",
    "softmax_loss_vectorized",
    "svm_loss_naive",
    "svm_loss_vectorized",
]
