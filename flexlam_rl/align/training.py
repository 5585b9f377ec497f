"""Select labels, fit a translator on them and score it per budget: :func:`run_alignment` is the whole job.

A supervised IDM on the same labels is the reference (:mod:`flexlam_rl.align.idm`); how the translator is
fit is :mod:`flexlam_rl.align.fitting`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..budgets import check_prefix_len
from ..data import TransitionSet
from ..errors import DataError
from ..metrics import action_score
from ..model import FlexLAM, null_fill
from .actions import action_spec
from .fitting import AlignConfig, LabeledSet, embed_transitions, train_translator
from .idm import supervised_idm_predict, train_supervised_idm
from .labels import LabelConfig, select_labels
from .translator import Translator


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
    budgets: Sequence[int] | None = None, supervised_idm: bool = False, scored: LabeledSet | None = None,
    log: Callable[[str], None] | None = None,
) -> AlignmentResult:
    """Select labels from ``pool``, fit the translator (and the supervised reference), score it on ``evaluation``.

    ``pool`` and ``evaluation`` must not share episodes (:func:`~flexlam_rl.align.label_and_eval_sets`).
    ``scored``: ``evaluation`` already encoded by this LAM (:func:`embed_transitions` of all of it), for callers
    that align one LAM several times. ``log``: told before each stage, so a slow fit on a loaded machine is
    visibly progressing (the CLI prints it; library callers default to silence).
    """
    say = log or (lambda _message: None)
    if not pool.has_actions or len(pool) == 0:
        raise DataError(f"The label pool {[s.source_id for s in pool.sources]} has no labeled transitions to align on.")
    if len(evaluation) == 0:
        raise DataError("No evaluation transitions: give eval datasets with episodes the labels do not use.")
    spec = action_spec(pool.sources[int(pool.source_index[0])].action_space)
    say(f"selecting labels ({label_cfg.strategy}) from {len(pool)} transitions ...")
    labels = select_labels(pool, label_cfg, lam=lam)
    labeled = embed_transitions(lam, pool, labels)
    if scored is None:
        say(f"encoding {len(evaluation)} held-out transitions ...")
        scored = embed_transitions(lam, evaluation, np.arange(len(evaluation)))
    say(f"fitting the translator on {len(labels)} labels ({align_cfg.steps} updates) ...")
    translator = train_translator(lam, labeled, spec, align_cfg)
    result = AlignmentResult(
        translator=translator, scores=alignment_by_budget(lam, translator, scored, budgets),
        metric="accuracy" if spec["type"] == "discrete" else "r2", labels=labels, pool_size=len(pool),
        eval_transitions=len(scored.actions),
    )
    if supervised_idm:
        say(f"fitting the supervised IDM on the same {len(labels)} labels (the reference) ...")
        pred = supervised_idm_predict(train_supervised_idm(lam, labeled, spec, align_cfg), scored)
        result.supervised_idm = action_score(pred, scored.actions.numpy(), spec["type"] == "discrete")
        result.info.update(supervised_idm_pred=pred, eval_actions=scored.actions.numpy(), eval_set=scored)
    return result
