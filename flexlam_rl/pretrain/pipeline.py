"""``flexlam-pretrain`` as a library call: train a LAM, score every budget, look at what it learned."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json
from ..config import LAMConfig
from ..data.transitions import TransitionData
from ..errors import FlexLAMWarning
from ..evaluate.diagnosis import budget_errors, collapse_warning, controllability, sample
from ..evaluate.inspect import prediction_figure
from ..evaluate.reconstruction import reconstruction_by_budget
from ..model.lam import FlexLAM
from .distributed import is_main_process
from .supervision import SupervisionConfig
from .train import TrainConfig, pretrain

DIAGNOSE_TRANSITIONS = 1024  # held-out transitions the final controllability diagnostic decodes


def run_pretraining(
    run_dir: str | Path, data: TransitionData, lam_cfg: LAMConfig, cfg: TrainConfig,
    budgets: list[int] | None = None, run_info: dict[str, Any] | None = None,
    on_check: Callable[[int, dict[str, Any]], None] | None = None, supervision: SupervisionConfig | None = None,
) -> dict[str, Any]:
    """Train (or resume) in ``run_dir``, score every budget on the held-out split, write ``metrics.json``.

    Returns the metrics: ``step``, ``resumed_from``, ``wall_time_s``, ``heldout`` (see
    :func:`~flexlam_rl.evaluate.reconstruction.reconstruction_by_budget`), ``controllability`` (what the tokens do on held-out
    transitions, :func:`~flexlam_rl.evaluate.diagnosis.controllability`), ``datasets``, ``lam`` and ``lam_dir`` (a
    ``torchrun`` worker other than rank 0 gets only ``step``, ``resumed_from`` and ``lam_dir``).
    ``on_check`` and ``supervision`` are passed to :func:`~flexlam_rl.pretrain.train.pretrain`; a supervised run's metrics add
    ``supervision`` (its labels, and ``action_head``: the head's score at the last check).
    """
    run_dir = Path(run_dir)
    notes = [large_frame_warning(lam_cfg)] if large_frame_warning(lam_cfg) else []
    for note in notes:
        warnings.warn(note, FlexLAMWarning, stacklevel=2)
    result = pretrain(run_dir, data, lam_cfg, cfg, run_info=run_info, on_check=on_check, supervision=supervision)
    if not is_main_process():  # another torchrun worker: rank 0 scores and reports
        return {"step": result.step, "resumed_from": result.resumed_from, "lam_dir": str(result.lam_dir)}
    lam = FlexLAM.load(result.lam_dir)
    picks = sample(len(data.heldout), DIAGNOSE_TRANSITIONS)
    if 0 < len(picks) == len(data.heldout):  # the diagnostic decodes the whole held-out split: no second pass
        control = controllability(lam, data.heldout, budgets, picks)
        evaluation = budget_errors(control)
    else:  # a sample (or nothing: reconstruction_by_budget's error names the fix)
        evaluation = reconstruction_by_budget(lam, data.heldout, budgets)
        control = controllability(lam, data.heldout, budgets, picks)
    collapsed = collapse_warning(control, lam_cfg.obs_shape)
    if collapsed:
        warnings.warn(collapsed, FlexLAMWarning, stacklevel=2)
        notes.append(collapsed)
    figure = prediction_figure(lam, data.heldout if len(data.heldout) else data.train, run_dir / "predictions.png")
    metrics = {"step": result.step, "resumed_from": result.resumed_from, "wall_time_s": result.wall_time_s,
               "heldout": evaluation, "controllability": control, "datasets": data.dataset_ids, "lam": lam_cfg.to_dict(),
               "lam_dir": str(result.lam_dir),
               "predictions": str(figure) if figure else None, "warnings": notes}
    if "supervision" in lam.extra:
        checked = [c["action_head"] for c in result.curve if c.get("action_head") is not None]
        metrics["supervision"] = {**lam.extra["supervision"], "action_head": checked[-1] if checked else None}
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def large_frame_warning(lam_cfg: LAMConfig) -> str | None:
    """Frames above ``LARGE_FRAME`` px make every update expensive on a CPU: say what it costs and the fix."""
    from ..envs.pixels import LARGE_FRAME

    if not lam_cfg.is_image or max(lam_cfg.obs_shape[:2]) <= LARGE_FRAME:
        return None
    h, w = lam_cfg.obs_shape[:2]
    return (f"{h}x{w} frames: each training update costs about {h * w / 64**2:.0f}x a 64x64 one, and small objects "
            f"(a ball, an agent) become a few pixels of a large frame the encoder has to find. Collect with a smaller "
            f"frame, e.g. preprocess={{kind: image, frame_size: 64, grayscale: true}} or preprocess=atari.")
