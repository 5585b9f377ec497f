"""Fit a translator on a few labels and score it per budget; :func:`run_alignment` is the whole job.

The translator reads exactly what the LAM's decoder reads, the null-filled prefix latent
``[B, K, D]`` for budget k (optionally with an o_t feature). Trained with a random prefix length
per example, one translator serves every budget; ``train_prefix=k`` gives the per-budget
comparison. It always trains for a fixed number of updates, whatever the label count, so budgets
and label fractions compare fairly. A supervised IDM on the same labels is the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..budgets import check_prefix_len
from ..data import TransitionSet
from ..errors import DataError
from ..fit import FitConfig, fit, seeded
from ..model import FlexLAM, null_fill
from .actions import action_score, action_spec
from .idm import supervised_idm_predict, train_supervised_idm
from .labels import LabelConfig, select_labels
from .translator import Translator, TranslatorConfig


@dataclass
class AlignConfig(FitConfig):
    """Translator training (the Hydra ``translator`` group): fixed updates whatever the label count."""

    steps: int = 2000
    batch_size: int = 128
    hidden_dim: int = 256
    num_layers: int = 2
    use_obs: bool = False
    train_prefix: int | None = None


@dataclass
class LabeledSet:
    """Labeled transitions with their LAM slot embeddings (no budget applied yet)."""

    slots: torch.Tensor  # [N, K, D]
    actions: torch.Tensor  # [N] or [N, A]
    obs: np.ndarray  # [N, ...] o_t, for translators with o_t features
    next_obs: np.ndarray


@torch.no_grad()
def embed_transitions(lam: FlexLAM, data: TransitionSet, indices: Sequence[int] | np.ndarray, batch_size: int = 256) -> LabeledSet:
    """Encode transitions with the frozen LAM: slots ``[N, K, D]`` = ``lam.embed(tokens, K)``."""
    idx = np.asarray(indices, dtype=np.int64)
    batch = data.__getitems__(idx)
    if "action" not in batch:
        raise DataError("These transitions have no actions to align to.")
    slots = [lam.embed(lam.encode(batch["obs"][i : i + batch_size], batch["next_obs"][i : i + batch_size]), lam.num_tokens)
             for i in range(0, len(idx), batch_size)]
    return LabeledSet(torch.cat(slots).cpu(), torch.as_tensor(batch["action"]), batch["obs"], batch["next_obs"])


def train_translator(lam: FlexLAM, labeled: LabeledSet, action_space_spec: dict[str, Any], cfg: AlignConfig) -> Translator:
    """Fit a translator on the labeled set for exactly ``cfg.steps`` updates.

    Random prefix lengths (one translator for every budget) only make sense for a LAM trained with
    nested dropout; a fixed-capacity LAM is defined at its full K alone, so its translator trains there.
    """
    train_prefix = cfg.train_prefix
    if train_prefix is None and not lam.config.nested_dropout:
        train_prefix = lam.num_tokens
    if train_prefix is not None:
        check_prefix_len(train_prefix, lam.num_tokens)
    tcfg = TranslatorConfig(
        num_tokens=lam.num_tokens, latent_dim=lam.latent_dim, action=action_space_spec, hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers, use_obs=cfg.use_obs, obs_shape=list(lam.config.obs_shape) if cfg.use_obs else None,
        train_prefix=train_prefix,
    )
    with seeded(cfg.seed):
        translator = Translator(tcfg)
    if cfg.use_obs:
        translator.copy_obs_stats(lam)
    null = lam.null_latent.detach().cpu()

    def batch_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if train_prefix is None:
            prefix = torch.randint(1, lam.num_tokens + 1, (len(idx),), generator=generator)
        else:
            prefix = torch.full((len(idx),), train_prefix)
        obs = labeled.obs[idx.numpy()] if cfg.use_obs else None
        return translator.loss(null_fill(labeled.slots[idx], prefix, null), labeled.actions[idx], obs)

    return fit(translator, batch_loss, len(labeled.actions), cfg)


@torch.no_grad()
def alignment_by_budget(
    lam: FlexLAM, translator: Translator, evaluation: LabeledSet, budgets: Sequence[int] | None = None
) -> dict[int, float]:
    """Held-out accuracy (Discrete) or R^2 (Box) of translated actions per budget k."""
    budgets = list(budgets) if budgets is not None else list(range(1, lam.num_tokens + 1))
    null = lam.null_latent.detach().cpu()
    scores = {}
    for k in budgets:
        check_prefix_len(k, lam.num_tokens)
        latent = null_fill(evaluation.slots, k, null)
        pred = translator.predict(latent, evaluation.obs if translator.config.use_obs else None)
        scores[int(k)] = action_score(pred, evaluation.actions.numpy(), translator.is_discrete)
    return scores


@dataclass
class AlignmentResult:
    """A fitted translator and how well it translates, per budget, on transitions it never saw."""

    translator: Translator
    scores: dict[int, float]  # accuracy (Discrete) or R^2 (Box) per budget k
    metric: str  # "accuracy" or "r2"
    labels: np.ndarray  # indices into the pool
    pool_size: int
    eval_transitions: int
    supervised_idm: float | None = None  # the reference: an IDM trained on the same labels
    info: dict[str, Any] = field(default_factory=dict)


def run_alignment(
    lam: FlexLAM, pool: TransitionSet, evaluation: TransitionSet, label_cfg: LabelConfig, align_cfg: AlignConfig,
    budgets: Sequence[int] | None = None, supervised_idm: bool = False,
) -> AlignmentResult:
    """Select labels from ``pool``, fit the translator (and the supervised reference), score it on ``evaluation``.

    ``pool`` and ``evaluation`` must not share episodes (:func:`~flexlam_rl.align.label_and_eval_sets`).
    """
    if not pool.has_actions or len(pool) == 0:
        raise DataError(f"The label pool {[s.source_id for s in pool.sources]} has no labeled transitions to align on.")
    if len(evaluation) == 0:
        raise DataError("No evaluation transitions: give eval datasets with episodes the labels do not use.")
    spec = action_spec(pool.sources[int(pool.source_index[0])].action_space)
    labels = select_labels(pool, label_cfg, lam=lam)
    labeled = embed_transitions(lam, pool, labels)
    scored = embed_transitions(lam, evaluation, np.arange(len(evaluation)))
    translator = train_translator(lam, labeled, spec, align_cfg)
    result = AlignmentResult(
        translator=translator, scores=alignment_by_budget(lam, translator, scored, budgets),
        metric="accuracy" if spec["type"] == "discrete" else "r2", labels=labels, pool_size=len(pool),
        eval_transitions=len(scored.actions),
    )
    if supervised_idm:
        pred = supervised_idm_predict(train_supervised_idm(lam, labeled, spec, align_cfg), scored)
        result.supervised_idm = action_score(pred, scored.actions.numpy(), spec["type"] == "discrete")
        result.info.update(supervised_idm_pred=pred, eval_actions=scored.actions.numpy(), eval_set=scored)
    return result
