"""Models: k-nearest neighbours, linear classifiers, and nets with a ``params`` dict and ``loss``."""
