"""Which transitions get action labels (the protocols), and which are held out to score alignment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..config import is_int
from ..data.sources import SourceArrays, load_source
from ..data.transitions import TransitionSet, split_sources
from ..errors import ConfigError, DataError
from .strategies import STRATEGIES, pick

if TYPE_CHECKING:
    from ..model.lam import FlexLAM

PROTOCOLS = ("standard", "low_return")


@dataclass
class LabelConfig:
    """Which transitions get action labels.

    ``standard``: a ``fraction`` (or ``count``) of the label pool's transitions.
    ``low_return``: the pool is first cut to episodes whose return is at most the
    ``quantile``-th quantile of episode returns, or at most ``max_return`` when that is set
    (a low-return, single-task stress test). ``strategy`` picks the labels among the candidates
    (:mod:`flexlam_rl.align.strategies`: ``random``, ``coverage``, ``uncertainty``, ``diversity``).
    """

    protocol: str = "standard"
    fraction: float | None = 0.02
    count: int | None = None
    quantile: float = 0.25
    max_return: float | None = None
    seed: int = 0
    strategy: str = "random"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"labels.protocol must be one of {PROTOCOLS}, got {self.protocol!r}.")
        if self.count is not None:
            if not is_int(self.count) or self.count < 1:
                raise ConfigError(f"labels.count must be a positive integer, got {self.count!r}.")
        elif self.fraction is None or not isinstance(self.fraction, (int, float)) or not 0.0 < self.fraction <= 1.0:
            raise ConfigError(
                f"labels.fraction must be in (0, 1] (e.g. 0.02 for 2% of transitions), got {self.fraction!r}; "
                f"or set labels.count to a number of labeled transitions."
            )
        if not 0.0 < self.quantile <= 1.0:
            raise ConfigError(f"labels.quantile must be in (0, 1], got {self.quantile!r}.")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"labels.strategy must be one of {STRATEGIES}, got {self.strategy!r}.")


def select_labels(pool: TransitionSet, cfg: LabelConfig, lam: FlexLAM | None = None) -> np.ndarray:
    """Indices into ``pool`` of the labeled transitions: sorted, distinct, int64, a function of ``cfg.seed``.

    The protocol decides the candidates; ``cfg.strategy`` picks among them (every strategy but ``random``
    reads what ``lam`` emits)."""
    if not pool.has_actions:
        raise DataError(
            f"The label datasets {[s.source_id for s in pool.sources]} store no usable actions; labels need "
            f"a dataset with Discrete or Box actions."
        )
    candidates = np.arange(len(pool))
    if cfg.protocol == "low_return":
        returns = np.array([pool.sources[s].episode_returns[e] for s, e in pool.episodes])
        if cfg.max_return is not None:
            cutoff, what = cfg.max_return, f"return <= labels.max_return={cfg.max_return}"
        else:
            cutoff = np.quantile(returns, cfg.quantile) if len(returns) else math.nan
            what = f"return at or below the {cfg.quantile} quantile"
        low = {ep for ep, r in zip(pool.episodes, returns) if r <= cutoff}
        if not low:
            lowest = f"; the lowest episode return is {returns.min():.3f}" if len(returns) else " (the pool has no episodes)"
            raise DataError(f"No label episodes with {what}{lowest}. Raise the threshold or use other label datasets.")
        keep = np.array([(int(s), int(e)) in low for s, e in zip(pool.source_index, pool.episode_index)], dtype=bool)
        candidates = candidates[keep]
    if len(candidates) == 0:
        raise DataError("The label pool holds no transitions.")
    wanted = cfg.count if cfg.count is not None else max(1, int(round(cfg.fraction * len(pool))))
    if wanted > len(candidates):
        where = "low-return episodes" if cfg.protocol == "low_return" else "the label datasets"
        raise DataError(
            f"{wanted} labeled transitions requested, but {where} hold only {len(candidates)}. Lower labels.count/"
            f"labels.fraction{' or raise labels.quantile' if cfg.protocol == 'low_return' else ''}."
        )
    return pick(cfg.strategy, pool, candidates, wanted, cfg.seed, lam).astype(np.int64)


def label_digest(pool: TransitionSet, indices: np.ndarray) -> str:
    """A short hash of which transitions ``indices`` of ``pool`` are (dataset id and frame, whatever the split or
    order): two selections with the same digest labeled the same transitions."""
    import hashlib

    names = sorted(pool.names(indices))
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


def check_actions_agree(label_sources: Sequence[SourceArrays], eval_sources: Sequence[SourceArrays]) -> None:
    """A translator outputs one action space: every label and eval dataset must have it, or nothing is trained."""
    reference = label_sources[0]
    for role, group in (("label", label_sources), ("eval", eval_sources)):
        for source in group:
            if source.action_space is None or source.action_space != reference.action_space:
                raise DataError(
                    f"Labels from {reference.describe()} and {role} dataset {source.describe()} have different actions: a "
                    f"translator outputs one action space, so it is trained and scored on data with the same actions. "
                    f"Pick {role} datasets of the label datasets' env (labels.datasets / eval.datasets), or align a "
                    f"translator on this env's own labels."
                )


def label_pool(label_sources: Sequence[SourceArrays], heldout_fraction: float, seed: int) -> TransitionSet:
    """Where labels are drawn: the training episodes of the label datasets (a dataset's split depends on its id,
    ``heldout_fraction`` and ``seed`` alone, so whatever else is loaded beside them, this is the same pool, in the same
    order, and :func:`select_labels` picks the same transitions from it: alignment and action supervision during
    pretraining both draw here)."""
    return split_sources(label_sources, heldout_fraction, seed).train


def label_and_eval_sets(
    label_ids: Sequence[str], eval_ids: Sequence[str], heldout_fraction: float, seed: int
) -> tuple[TransitionSet, TransitionSet]:
    """The label pool and the evaluation set, never sharing an episode.

    The pool is the training episodes of ``label_ids``. The evaluation set is every episode of
    each dataset in ``eval_ids`` that is not a label dataset, and only the held-out episodes of
    those that are (the same split the pool was cut from).
    """
    label_ids, eval_ids = list(label_ids), list(eval_ids)
    sources = {i: load_source(i) for i in dict.fromkeys(label_ids + eval_ids)}
    check_actions_agree([sources[i] for i in label_ids], [sources[i] for i in eval_ids])
    data = split_sources(list(sources.values()), heldout_fraction, seed)
    pool = label_pool([sources[i] for i in dict.fromkeys(label_ids)], heldout_fraction, seed)
    labeled = set(label_ids)
    held = [(s, e) for s, e in data.heldout.episodes if data.heldout.sources[s].source_id in eval_ids]
    unlabeled = [(s, e) for s, e in data.train.episodes
                 if data.train.sources[s].source_id in eval_ids and data.train.sources[s].source_id not in labeled]
    return pool, data.train.subset_episodes(sorted(held + unlabeled))
