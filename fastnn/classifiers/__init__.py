"""Models: k-nearest neighbours, linear classifiers, and nets with a ``params`` dict and ``loss``."""
from fastnn.classifiers.fc_net import FullyConnectedNet, TwoLayerNet  # noqa: F401
from fastnn.classifiers.knn import KNearestNeighbor  # noqa: F401
from fastnn.classifiers.linear_classifier import LinearClassifier, LinearSVM, Softmax  # noqa: F401
from fastnn.classifiers.linear_svm import svm_loss_naive, svm_loss_vectorized  # noqa: F401
from fastnn.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized  # noqa: F401
