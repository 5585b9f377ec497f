"""The one fit loop for the small supervised models (translator, supervised IDM, latent BC policy).

They all train for a fixed number of AdamW updates on random minibatches of a small in-memory
set, so budgets and label counts compare at equal compute. Randomness comes from a generator
seeded with ``seed`` (minibatches) and from :func:`seeded` (initial weights); neither touches
the caller's global torch RNG state.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import nn

from .config import check_positive_ints
from .errors import ConfigError

M = TypeVar("M", bound=nn.Module)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build modules with weights that depend only on ``seed``; the global RNG state is restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass
class FitConfig:
    """Optimization of a small model: ``steps`` AdamW updates on minibatches of ``batch_size``."""

    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_ints("fit", self, ("steps", "batch_size"))
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}.")


def chunked_mean(chunk_loss: Callable[[slice], torch.Tensor], num_items: int, chunk: int = 512) -> float:
    """The mean over ``num_items`` of a loss that ``chunk_loss(rows)`` averages over a slice of them, a chunk at a
    time (a validation set need not fit in one batch)."""
    return sum(float(chunk_loss(slice(i, i + chunk))) * (min(i + chunk, num_items) - i)
               for i in range(0, num_items, chunk)) / num_items


@dataclass
class Validation:
    """Early stopping: ``loss()`` is read every ``every`` updates (and after the last), the weights of its lowest
    value are kept, and ``stop(losses so far)`` may end training after a check (a plateau rule)."""

    loss: Callable[[], float]
    every: int = 10
    stop: Callable[[list[float]], bool] | None = None


def fit(
    model: M,
    batch_loss: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    num_items: int,
    cfg: FitConfig,
    validation: Validation | None = None,
    record: dict[str, Any] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> M:
    """Train ``model`` for ``cfg.steps`` updates (fewer when ``validation.stop`` says so) and return it in eval mode.

    Each update draws ``cfg.batch_size`` indices into ``0..num_items-1`` (with replacement) from a generator seeded
    with ``cfg.seed`` and minimizes ``batch_loss(indices, generator)``; the loss may draw more randomness (e.g.
    prefix lengths) from the same generator. With ``validation`` the weights of the lowest validation loss are the
    ones returned (:class:`Validation`). ``record`` receives ``updates``, ``plateaued`` and ``validation`` (the lowest
    validation loss, None without one). ``progress(updates, training loss)`` is told ten times over a run (a fit of
    a minute on a loaded machine is otherwise silent).
    """
    if num_items < 1:
        raise ConfigError("Nothing to fit: the training set is empty.")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    best, best_state, losses, plateaued = math.inf, None, [], False
    report_every = max(1, cfg.steps // 10)
    for step in range(cfg.steps + 1):
        if validation is not None and (step % validation.every == 0 or step == cfg.steps):
            model.eval()
            with torch.no_grad():
                loss = float(validation.loss())
            losses.append(loss)
            if loss < best:
                best, best_state = loss, {k: v.clone() for k, v in model.state_dict().items()}
            plateaued = validation.stop is not None and step < cfg.steps and validation.stop(losses)
        if step == cfg.steps or plateaued:
            break
        model.train()
        idx = torch.randint(0, num_items, (cfg.batch_size,), generator=generator)
        loss = batch_loss(idx, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None and (step + 1) % report_every == 0:
            progress(step + 1, float(loss.detach()))
    if best_state is not None:
        model.load_state_dict(best_state)
    if record is not None:
        record.update(updates=step, plateaued=plateaued, validation=best if best_state is not None else None)
    return model.eval()


def fit_progress(what: str, steps: int, log: Callable[[str], None] | None) -> Callable[[int, float], None] | None:
    """A :func:`fit` progress callback that tells ``log`` one line per report (None without a log)."""
    if log is None:
        return None
    return lambda updates, loss: log(f"  {what}: {updates}/{steps} updates, training loss {loss:.4f}")
