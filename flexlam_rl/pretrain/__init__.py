"""Pretraining: the step loop with checkpoints and exact resume, the plateau rule, run folders, action supervision,
and ``flexlam-pretrain`` as a library call."""

from .pipeline import run_pretraining
from .supervision import SupervisionConfig
from .train import PretrainResult, TrainConfig, pretrain

__all__ = ["PretrainResult", "SupervisionConfig", "TrainConfig", "pretrain", "run_pretraining"]
