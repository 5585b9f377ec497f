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

from ..data.transitions import TransitionSet
from ..errors import DataError
from ..fit import fit_progress
from ..metrics import action_score, balanced_accuracy, majority_rate
from ..model.budgets import check_prefix_len
from ..model.lam import FlexLAM, null_fill
from .actions import action_spec
from .fitting import AlignConfig, LabeledSet, embed_transitions, train_translator
from .idm import supervised_idm_predict, train_supervised_idm
from .labels import LabelConfig, select_labels
from .translator import Translator


@torch.no_grad()
def translated_actions(lam: FlexLAM, translator: Translator, evaluation: LabeledSet,
                       budgets: Sequence[int] | None = None) -> dict[int, np.ndarray]:
    """The translator's actions for the evaluation transitions at each budget k."""
    budgets = list(budgets) if budgets is not None else list(range(1, lam.num_tokens + 1))
    null = lam.null_latent.detach().cpu()
    out = {}
    for k in budgets:
        check_prefix_len(k, lam.num_tokens)
        latent = null_fill(evaluation.slots, k, null)
        out[int(k)] = translator.predict(latent, evaluation.obs if translator.config.use_obs else None)
    return out


def alignment_by_budget(
    lam: FlexLAM, translator: Translator, evaluation: LabeledSet, budgets: Sequence[int] | None = None
) -> dict[int, float]:
    """Held-out accuracy (Discrete) or R^2 (Box) of translated actions per budget k."""
    actions = evaluation.actions.numpy()
    return {k: action_score(pred, actions, translator.is_discrete)
            for k, pred in translated_actions(lam, translator, evaluation, budgets).items()}


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
    # Discrete actions: what an accuracy is read against (None for Box)
    balanced: dict[int, float] | None = None  # balanced accuracy per budget k
    majority_rate: float | None = None  # always answering the evaluation set's commonest action
    eval_classes: int | None = None  # actions the evaluation set holds: a constant answer's balanced accuracy is 1 / this
    supervised_idm_balanced: float | None = None
    idm_all_labels: float | None = None  # the ceiling: an IDM trained on every labeled transition of the pool
    idm_all_labels_balanced: float | None = None


@dataclass
class AlignOptions:
    """What an alignment scores, and what it reads the translator against: the ``budgets`` (default every k), an IDM
    on the same labels (``supervised_idm``, the reference), one on every transition of the label pool (``idm_ceiling``,
    the ceiling); ``log`` is told before each stage, so a slow fit on a loaded machine is visibly progressing."""

    budgets: Sequence[int] | None = None
    supervised_idm: bool = False
    idm_ceiling: bool = False
    log: Callable[[str], None] | None = None


def run_alignment(
    lam: FlexLAM, pool: TransitionSet, evaluation: TransitionSet, label_cfg: LabelConfig, align_cfg: AlignConfig,
    options: AlignOptions | None = None, scored: LabeledSet | None = None,
) -> AlignmentResult:
    """Select labels from ``pool``, fit the translator (and the supervised reference), score it on ``evaluation``.

    ``pool`` and ``evaluation`` must not share episodes (:func:`~flexlam_rl.align.label_and_eval_sets`).
    ``scored``: ``evaluation`` already encoded by this LAM (:func:`embed_transitions` of all of it), for callers
    that align one LAM several times. ``options``: budgets, the IDMs it is read against and a log
    (:class:`AlignOptions`; the CLI prints the log, library callers default to silence). For discrete actions the
    result also reads every accuracy against the evaluation set's majority-class rate and as balanced accuracy.
    """
    options = options or AlignOptions()
    budgets = options.budgets
    say = options.log or (lambda _message: None)
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
    translator = train_translator(lam, labeled, spec, align_cfg, options.log)
    discrete, truth = spec["type"] == "discrete", scored.actions.numpy()
    translated = translated_actions(lam, translator, scored, budgets)
    result = AlignmentResult(
        translator=translator, scores={k: action_score(pred, truth, discrete) for k, pred in translated.items()},
        metric="accuracy" if discrete else "r2", labels=labels, pool_size=len(pool),
        eval_transitions=len(scored.actions),
    )
    if discrete:
        result.balanced = {k: balanced_accuracy(pred, truth) for k, pred in translated.items()}
        result.majority_rate = majority_rate(truth)
        result.eval_classes = len(np.unique(truth))
    if options.supervised_idm:
        say(f"fitting the supervised IDM on the same {len(labels)} labels (the reference) ...")
        progress = fit_progress("supervised IDM", align_cfg.steps, options.log)
        pred = supervised_idm_predict(train_supervised_idm(lam, labeled, spec, align_cfg, progress), scored)
        result.supervised_idm = action_score(pred, truth, discrete)
        result.info.update(supervised_idm_pred=pred, eval_actions=truth, eval_set=scored)
        if discrete:
            result.supervised_idm_balanced = balanced_accuracy(pred, truth)
    if options.idm_ceiling:
        say(f"fitting the supervised IDM on every one of the pool's {len(pool)} labeled transitions (the ceiling) ...")
        result.idm_all_labels, result.idm_all_labels_balanced = all_label_idm(lam, pool, scored, spec, align_cfg,
                                                                              options.log)
    return result


def all_label_idm(lam: FlexLAM, pool: TransitionSet, scored: LabeledSet, spec: dict[str, Any],
                  align_cfg: AlignConfig, log: Callable[[str], None] | None = None) -> tuple[float, float | None]:
    """A supervised IDM (the LAM's encoder architecture, no pretraining) on every transition of ``pool``, scored on
    ``scored``: (accuracy or R^2, balanced accuracy or None for Box actions). The ceiling scarce labels are read against."""
    every = embed_transitions(lam, pool, np.arange(len(pool)))
    model = train_supervised_idm(lam, every, spec, align_cfg, fit_progress("all-label IDM", align_cfg.steps, log))
    pred = supervised_idm_predict(model, scored)
    truth, discrete = scored.actions.numpy(), spec["type"] == "discrete"
    return action_score(pred, truth, discrete), balanced_accuracy(pred, truth) if discrete else None
