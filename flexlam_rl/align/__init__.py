"""Align latent actions to real actions with a few labels.

``actions`` (what a translator outputs), ``translator`` (the model), ``labels`` (which
transitions are labeled, which are scored; ``strategies`` pick them), ``fitting`` (fit a translator),
``training`` (select, fit and score: :func:`run_alignment`),
``idm`` (the supervised reference) and ``pipeline`` (:func:`align_lam`: saved LAM in, saved translator out).
"""

from ..metrics import action_score
from .actions import action_spec, box_from_unit, box_to_unit, check_action_space_fits
from .fitting import AlignConfig, LabeledSet, embed_transitions, train_translator
from .idm import SupervisedIDM, supervised_idm_score, train_supervised_idm
from .labels import PROTOCOLS, LabelConfig, label_and_eval_sets, select_labels
from .pipeline import AlignData, align_lam
from .training import AlignmentResult, AlignOptions, alignment_by_budget, run_alignment
from .translator import Translator, TranslatorConfig

__all__ = [
    "PROTOCOLS",
    "AlignConfig",
    "AlignData",
    "AlignOptions",
    "AlignmentResult",
    "LabelConfig",
    "LabeledSet",
    "SupervisedIDM",
    "Translator",
    "TranslatorConfig",
    "action_score",
    "action_spec",
    "align_lam",
    "alignment_by_budget",
    "box_from_unit",
    "box_to_unit",
    "check_action_space_fits",
    "embed_transitions",
    "label_and_eval_sets",
    "run_alignment",
    "select_labels",
    "supervised_idm_score",
    "train_supervised_idm",
    "train_translator",
]
