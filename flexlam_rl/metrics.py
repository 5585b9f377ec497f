"""The scores every part of the toolkit reports, defined once: action accuracy (with its balanced form and the
majority-class rate it is read against), R^2, mean and standard error.

Standard errors use ``ddof=1`` everywhere (the sample standard deviation): with the 3-10 seeds or episodes
our reports average over, ``ddof=0`` would understate the spread by up to 18%.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def r_squared(pred: Any, target: Any) -> float:
    """R^2 uniformly averaged over target dimensions; a (near-)constant dimension, where R^2 is undefined, is
    left out (NaN when every dimension is constant)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(len(pred), -1)
    target = np.asarray(target, dtype=np.float64).reshape(len(target), -1)
    residual = ((target - pred) ** 2).sum(0)
    total = ((target - target.mean(0)) ** 2).sum(0)
    defined = total > 1e-8 * len(target)
    if not defined.any():
        return float("nan")
    return float(np.mean(1.0 - residual[defined] / total[defined]))


def action_score(pred: Any, target: Any, discrete: bool) -> float:
    """Accuracy for discrete actions; R^2 (:func:`r_squared`) for continuous."""
    if discrete:
        return float(np.mean(np.asarray(pred).reshape(-1) == np.asarray(target).reshape(-1)))
    return r_squared(pred, target)


def balanced_accuracy(pred: Any, target: Any) -> float:
    """Mean over the classes present in ``target`` of each class's recall: always answering the commonest class
    scores 1 / (number of classes), however common it is."""
    pred, target = np.asarray(pred).reshape(-1), np.asarray(target).reshape(-1)
    classes = np.unique(target)
    return float(np.mean([np.mean(pred[target == c] == c) for c in classes])) if len(classes) else float("nan")


def majority_rate(target: Any) -> float:
    """The accuracy of always answering the commonest action of ``target``: what an accuracy must beat to say
    anything (the best constant answer on these transitions)."""
    _, counts = np.unique(np.asarray(target).reshape(-1), return_counts=True)
    return float(counts.max() / counts.sum()) if len(counts) else float("nan")


def confusion_matrix(pred: Any, target: Any, n: int) -> np.ndarray:
    """``[true action, predicted action]`` counts over ``n`` actions: what an accuracy hides (which actions are
    told apart), and the balanced accuracy and majority rate can be read back from it."""
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (np.asarray(target).astype(np.int64).ravel(), np.asarray(pred).astype(np.int64).ravel()), 1)
    return out


def standard_error(values: Any) -> float:
    """Standard error of the mean with ``ddof=1``; NaN for fewer than two values (no spread to estimate)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    return float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")


def mean_se(values: Any) -> dict[str, float]:
    """Mean, standard error and count over seeds or episodes (a value may itself be a list: its mean counts)."""
    arr = np.asarray([np.mean(v) for v in values], dtype=np.float64)
    return {"mean": float(arr.mean()), "se": standard_error(arr), "n": int(len(arr))}
