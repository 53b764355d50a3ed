"""The training Solvers, importable from one place as in CS231n's ``solver`` module.

- :class:`Solver` (:mod:`fastnn._solver`): minibatch training of any model with a ``params`` dict
  and ``loss(X, y=None)``; CS231n's keyword arguments plus schedules, clipping, early stopping,
  augmentation, frozen parameters, atomic checkpoints and exact resume.
- :class:`CaptioningSolver` (:mod:`fastnn.captioning_solver`): the same loop over a captioning
  data set (CS231n's ``captioning_solver``).
- :class:`LanguageModelSolver` (:mod:`fastnn.sequence_solver`): the same loop over consecutive
  windows of a text, carrying the recurrent state (truncated backpropagation through time).
"""

from fastnn._solver import Solver
from fastnn.captioning_solver import CaptioningSolver
from fastnn.sequence_solver import LanguageModelSolver

__all__ = ["CaptioningSolver", "LanguageModelSolver", "Solver"]
