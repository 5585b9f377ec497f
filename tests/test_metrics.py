"""The shared scores: R^2 against its definition, ddof=1 standard errors, the fit loop's early stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flexlam_rl.fit import FitConfig, Validation, fit
from flexlam_rl.metrics import action_score, mean_se, r_squared, standard_error


def test_r_squared_matches_its_definition_and_skips_constant_dimensions() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(50, 2))
    pred = target + rng.normal(scale=0.5, size=(50, 2))
    by_hand = [1 - ((target[:, d] - pred[:, d]) ** 2).sum() / ((target[:, d] - target[:, d].mean()) ** 2).sum() for d in (0, 1)]
    assert r_squared(pred, target) == pytest.approx(np.mean(by_hand))
    with_constant = np.concatenate([target, np.ones((50, 1))], axis=1)
    assert r_squared(np.concatenate([pred, np.zeros((50, 1))], axis=1), with_constant) == pytest.approx(np.mean(by_hand))
    assert math.isnan(r_squared(np.zeros((4, 1)), np.ones((4, 1))))
    assert action_score(np.array([1, 2, 3, 0]), np.array([1, 2, 0, 0]), discrete=True) == 0.75


def test_standard_error_uses_the_sample_standard_deviation() -> None:
    assert standard_error([1.0, 2.0, 3.0]) == pytest.approx(1 / math.sqrt(3))  # sd (ddof=1) = 1
    assert math.isnan(standard_error([4.0]))
    assert mean_se([[1.0, 3.0], [4.0]]) == {"mean": 3.0, "se": pytest.approx(1.0), "n": 2}


def test_fit_with_a_validation_loss_returns_its_best_weights() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1, bias=False)
    seen: list[float] = []

    def validation() -> float:  # best when the weight is nearest 0.5; training pushes it towards 2
        seen.append(abs(float(model.weight) - 0.5))
        return seen[-1]

    x = torch.linspace(-1, 1, 32)[:, None]
    with torch.no_grad():
        model.weight.fill_(0.0)
    fit(model, lambda idx, gen: ((model(x[idx]) - 2 * x[idx]) ** 2).mean(), 32, FitConfig(steps=60, lr=0.05, seed=0),
        Validation(validation, every=5))
    assert len(seen) == 13  # steps 0, 5, ..., 60
    assert abs(float(model.weight) - 0.5) == pytest.approx(min(seen))
    assert min(seen) < seen[0] and min(seen) < seen[-1]


def test_balanced_accuracy_and_the_majority_rate_do_not_flatter_a_constant_answer() -> None:
    from flexlam_rl.metrics import balanced_accuracy, majority_rate

    target = np.array([1] * 68 + [0] * 20 + [2] * 12)  # Freeway-like: UP most of the time
    always_up = np.ones_like(target)
    assert majority_rate(target) == pytest.approx(0.68) and action_score(always_up, target, True) == pytest.approx(0.68)
    assert balanced_accuracy(always_up, target) == pytest.approx(1 / 3)  # one class of three recalled
    assert balanced_accuracy(target, target) == 1.0
    half = target.copy()
    half[:34] = 0  # half of the UPs wrong: accuracy 0.34 + 0.32, balanced (0.5 + 1 + 1) / 3
    assert balanced_accuracy(half, target) == pytest.approx(2.5 / 3)
