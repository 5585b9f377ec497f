"""Pretrain a (Flex)LAM on action-free transitions, with checkpoints and exact resume.

Everything random in step ``s`` (batch, prefix lengths) derives from ``(seed, s)``, so a
restarted run resumes from its last checkpoint and ends with the same weights as an
uninterrupted one. The run directory's layout is :mod:`flexlam_rl.runs`.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import distributed
from .checkpoint import atomic_write_json
from .config import LAMConfig, check_positive_ints, plain
from .data import TransitionData, step_loader
from .diagnosis import collapse_warning, controllability
from .errors import ConfigError, FlexLAMWarning, TrainingDiverged
from .evaluate import reconstruction_by_budget
from .fit import seeded
from .model import FlexLAM
from .plateau import Plateau, heldout_objective, heldout_subset
from .quantize import code_usage
from .runs import (
    check_same_run,
    lam_step,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temps,
    save_checkpoint,
    writer_lock,
)

USAGE_WINDOW = 20  # code usage (perplexity) is measured over the tokens of the last this many batches
COLLAPSE_CHECK_AFTER = 500  # updates before a code that does not matter counts as collapsed, not as still warming up
CONTROL_TRANSITIONS = 256  # checked transitions the controllability diagnostic decodes at each check


@dataclass
class TrainConfig:
    """Optimization settings; steps are optimizer updates (not epochs) so budgets compare fairly."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    log_every: int = 25
    eval_every: int = 500
    eval_transitions: int = 1024
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True
    fused_optimizer: bool = True  # one fused AdamW kernel instead of a loop over parameters (same update rule)
    prefix_samples: int = 1  # FlexLAM: decode each example at this many stratified prefix lengths per update
    # Train to a plateau instead of for `steps` (see Plateau): checks every eval_every updates on eval_transitions
    # validation transitions; once every budget has plateaued the LR drops (plateau_decays times), then training stops.
    until_plateau: bool = False
    max_steps: int = 20_000  # the cap when until_plateau
    plateau_window: int = 4  # checks
    plateau_tol: float = 0.02  # relative improvement of the window's mean held-out loss over the window before
    plateau_decays: int = 1
    plateau_lr_factor: float = 0.1

    def __post_init__(self) -> None:
        check_positive_ints("train", self, ("steps", "batch_size", "checkpoint_every", "log_every", "eval_every",
                                            "keep_checkpoints", "prefix_samples", "max_steps", "plateau_window"))
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}.")
        if not 0 <= self.plateau_tol < 1 or not 0 < self.plateau_lr_factor <= 1 or self.plateau_decays < 0:
            raise ConfigError("train.plateau_tol must be in [0, 1), train.plateau_lr_factor in (0, 1] and "
                              f"train.plateau_decays >= 0; got {self.plateau_tol}, {self.plateau_lr_factor}, {self.plateau_decays}.")

    @property
    def total_steps(self) -> int:
        """The most updates this run makes: ``steps``, or the ``max_steps`` cap when training to a plateau."""
        return self.max_steps if self.until_plateau else self.steps


@dataclass
class PretrainResult:
    run_dir: Path
    lam_dir: Path
    step: int
    resumed_from: int
    final_loss: float
    code_usage: list[float]
    wall_time_s: float
    history: list[dict[str, float]] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)  # held-out checks: {updates, wall_s, loss, mse: {k: v}}
    plateaued: bool | None = None  # until_plateau: stopped on a plateau (True) or at max_steps (False)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asked for, but CUDA is not available; use device=cpu or device=auto.")
    return torch.device(device)


def lr_at(step: int, cfg: TrainConfig, scale: float = 1.0) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio * lr`` over ``steps``; or, when training to a
    plateau (whose length is not known in advance), constant ``lr * scale`` (``scale`` from :class:`Plateau`)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.until_plateau:
        return cfg.lr * scale
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


# --------------------------------------------------------------------- training
def build_lam(lam_cfg: LAMConfig, data: TransitionData, seed: int) -> FlexLAM:
    """A freshly initialized LAM (weights a function of ``seed``) with the data's vector statistics."""
    with seeded(seed):
        lam = FlexLAM(lam_cfg)
    if not lam_cfg.is_image:
        lam.set_obs_stats(*data.obs_stats())
    return lam


def lam_config_for(values: Any, data: TransitionData | None) -> LAMConfig:
    """LAM settings (e.g. the Hydra ``lam`` group) + the data's observation layout -> a validated :class:`LAMConfig`.

    With ``data=None`` only the data-independent fields are checked (against a stand-in image
    shape), so a typo fails before any dataset is opened.
    """
    values = dict(plain(values))
    values.pop("name", None)
    values.setdefault("obs_shape", list(data.obs_shape) if data else [64, 64, 3])
    values.setdefault("obs_dtype", "uint8" if len(values["obs_shape"]) == 3 else "float32")
    values.setdefault("preprocess", data.preprocess if data else {"kind": "identity"})
    return LAMConfig.from_dict(values)


def check_data_matches(lam_cfg: LAMConfig, data: TransitionData) -> None:
    if tuple(lam_cfg.obs_shape) != tuple(data.obs_shape):
        raise ConfigError(
            f"LAM obs_shape {list(lam_cfg.obs_shape)} does not match the data's {list(data.obs_shape)}; "
            f"leave lam.obs_shape unset to take it from the data."
        )


def make_optimizer(lam: FlexLAM, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused into one kernel where this torch and device support it (``fused_optimizer``)."""
    if cfg.fused_optimizer:
        try:
            return torch.optim.AdamW(lam.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch or an unsupported device: the foreach kernel
            pass
    return torch.optim.AdamW(lam.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def pretrain(
    run_dir: str | Path,
    data: TransitionData,
    lam_cfg: LAMConfig,
    cfg: TrainConfig,
    run_info: dict[str, Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    on_check: Callable[[int, dict[str, Any]], None] | None = None,
) -> PretrainResult:
    """Train (or resume, or extend) a LAM in ``run_dir`` (layout: :mod:`flexlam_rl.runs`).

    ``on_step(step, loss)`` is called after every update with the mean training loss of the
    current logging window, as last read from the device; ``on_check(step, report)`` after each
    held-out check with the :func:`~flexlam_rl.diagnosis.controllability` report of the checked
    transitions (plus ``mse_checks``, the errors the plateau reads). A second process training into the same
    ``run_dir`` is refused. Raising ``steps`` (or a plateau run's ``max_steps``) extends a run: a plateau
    run's LR does not depend on its cap, so that is exact; a fixed-length run continues its cosine
    schedule over the new length from where it stopped (not bit-identical to a fresh run of that length).
    Under ``torchrun`` each process trains on its shard of every step's batch and rank 0 alone
    writes (:mod:`flexlam_rl.distributed`).
    """
    run_dir = Path(run_dir)
    check_data_matches(lam_cfg, data)
    device = distributed.device_for(resolve_device(cfg.device))
    ctx = distributed.context(device)  # one process, or one of torchrun's (see flexlam_rl.distributed)
    run_dir = Path(ctx.broadcast(str(run_dir)))  # ranks started a second apart may have named different default dirs
    record = {"lam": lam_cfg.to_dict(), "train": _resume_relevant(cfg), "datasets": data.dataset_ids,
              "steps": cfg.total_steps, **(run_info or {})}
    try:
        with writer_lock(run_dir) if ctx.is_main else contextlib.nullcontext():
            previous_steps = check_same_run(run_dir, record)
            if ctx.is_main:
                if cfg.until_plateau and data.checks is data.heldout:
                    warnings.warn("train.until_plateau: the plateau is judged on the held-out split, which the final scores "
                                  "also read; set data.validation_fraction=0.1 for a validation split of its own.", FlexLAMWarning,
                                  stacklevel=2)
                if previous_steps is not None and previous_steps != cfg.total_steps and not cfg.until_plateau:
                    warnings.warn(f"{run_dir}: continuing a {previous_steps}-step run as a {cfg.total_steps}-step one; its "
                                  f"cosine schedule now spans {cfg.total_steps} steps.", FlexLAMWarning, stacklevel=2)
                remove_stale_temps(run_dir)
                atomic_write_json(run_dir / "run.json", record)
            ctx.barrier()  # every rank resumes from the same checkpoint, after rank 0 tidied the run dir
            return _train(run_dir, data, lam_cfg, cfg, device, on_step, ctx, on_check)
    finally:
        ctx.close()


def _train(run_dir: Path, data: TransitionData, lam_cfg: LAMConfig, cfg: TrainConfig, device: torch.device,
           on_step: Callable[[int, float], None] | None, ctx: distributed.Context,
           on_check: Callable[[int, dict[str, Any]], None] | None = None) -> PretrainResult:
    lam = build_lam(lam_cfg, data, cfg.seed).to(device)
    model = lam if not ctx.active else torch.nn.parallel.DistributedDataParallel(
        lam, device_ids=[device.index] if device.type == "cuda" else None)
    shard = ctx.shard(cfg.batch_size)
    optimizer = make_optimizer(lam, cfg)
    start, history, curve, elapsed_before, plateau_state = 0, [], [], 0.0, None
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        state = load_checkpoint(ckpt, lam, optimizer)
        start, history, elapsed_before = int(state["step"]), list(state.get("history", [])), float(state.get("wall_time_s", 0.0))
        curve, plateau_state = list(state.get("curve", [])), state.get("plateau")
    plateau = Plateau(cfg, plateau_state)
    checks = heldout_subset(data, cfg.eval_transitions)
    check_budgets = None if lam_cfg.nested_dropout else [lam_cfg.num_tokens]  # a fixed LAM is defined at its K alone
    resumed_from = start
    lam_extra = {"datasets": data.dataset_ids, "seed": cfg.seed}

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start if start else None) if ctx.is_main else None
    total = start if plateau.stopped else cfg.total_steps
    loader = step_loader(data.train, cfg.batch_size, cfg.seed, start, max(0, total - start), cfg.num_workers, shard)
    progress = _progress(cfg, start) if ctx.is_main else None
    t0, loss_value, usage = time.time(), float("nan"), torch.full((lam.num_tokens,), float("nan"))
    # Host syncs: reading the loss is free on the CPU but stalls a GPU, so there it happens every log_every steps.
    sync_every = 1 if device.type == "cpu" else cfg.log_every
    recent_tokens: deque[torch.Tensor] = deque(maxlen=USAGE_WINDOW)
    window_loss, window_steps = torch.zeros((), device=device), 0
    warned = False
    lam.train()
    step = start
    try:
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg, plateau.lr_scale)
            # the global batch's prefix lengths, as one process would draw them; this rank keeps its shard
            prefix = lam.draw_prefix_lens(cfg.batch_size, cfg.prefix_samples, step_generator(cfg.seed, step))[shard]
            out = model(batch["obs"].to(device, non_blocking=True), batch["next_obs"].to(device, non_blocking=True),
                        prefix_len=prefix)
            optimizer.zero_grad(set_to_none=True)
            distributed.backward(out.loss, ctx)
            torch.nn.utils.clip_grad_norm_(lam.parameters(), cfg.grad_clip, foreach=True)
            optimizer.step()
            step += 1
            window_loss += ctx.mean(out.loss) if ctx.active else out.loss.detach()
            window_steps += 1
            recent_tokens.append(out.tokens.detach())
            log_now = step % cfg.log_every == 0 or step == total
            save_now = step % cfg.checkpoint_every == 0 or step == total
            if log_now or save_now or step % sync_every == 0:
                loss_value = window_loss.item() / window_steps
                if not math.isfinite(loss_value):  # NaN/inf weights are never saved: the last checkpoint stays good
                    good = latest_checkpoint(run_dir)
                    raise TrainingDiverged(
                        f"Loss became {loss_value} by step {step}; stopped without saving. The last good checkpoint "
                        f"is {good or 'none (nothing saved yet)'}. Lower train.lr (now {cfg.lr}) or check the data for NaN/inf."
                    )
            if log_now:
                usage = code_usage(torch.cat(list(recent_tokens)).cpu(), lam.codebook_size)
                if writer is not None:
                    writer.add_scalar("train/loss", loss_value, step)
                    writer.add_scalar("train/lr", lr_at(step - 1, cfg, plateau.lr_scale), step)
                    for slot, value in enumerate(usage.tolist()):
                        writer.add_scalar(f"code_usage/slot_{slot + 1}", value, step)
                history.append({"step": step, "loss": loss_value})  # mean over the steps since the last entry
                window_loss, window_steps = torch.zeros((), device=device), 0
            if step % cfg.eval_every == 0 and len(checks) > 0:
                errors = reconstruction_by_budget(lam, data.checks, check_budgets, indices=checks)
                loss = heldout_objective(lam, errors["mse"])
                report = controllability(lam, data.checks, check_budgets, checks[:CONTROL_TRANSITIONS]) if ctx.is_main else None
                curve.append({"updates": step, "wall_s": elapsed_before + time.time() - t0, "loss": loss, "mse": errors["mse"],
                              **({"controllability": report["controllability"]} if report else {})})
                if writer is not None:
                    _log_check(writer, step, errors, report)
                if report is not None and not warned and step >= COLLAPSE_CHECK_AFTER and collapse_warning(report):
                    warnings.warn(f"step {step}: {collapse_warning(report, lam_cfg.obs_shape)}", FlexLAMWarning, stacklevel=2)
                    warned = True
                if on_check is not None and report is not None:
                    on_check(step, {**report, "mse_checks": errors["mse"]})
                lam.train()
                if cfg.until_plateau:
                    plateau.update(errors["mse"])
                    save_now = save_now or plateau.stopped
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.5f}", min_code_usage=f"{float(usage.min()):.2f}", refresh=False)
            if on_step is not None:
                on_step(step, loss_value)
            if save_now and ctx.is_main:
                state = {"seed": cfg.seed, "history": history, "wall_time_s": elapsed_before + time.time() - t0,
                         "code_usage": usage.tolist(), "lam_extra": lam_extra, "curve": curve, "plateau": plateau.state()}
                save_checkpoint(run_dir, lam, optimizer, step, state, cfg.keep_checkpoints)
            if plateau.stopped:
                break
    finally:
        if writer is not None:
            writer.close()
        if progress is not None:
            progress.close()
    ctx.barrier()  # rank 0's last checkpoint is on disk before any rank returns
    if ctx.is_main and step == start and start > 0 and lam_step(run_dir) != step:  # lam/ lost or stale: redo it
        save_checkpoint(run_dir, lam, optimizer, step, {"seed": cfg.seed, "history": history, "lam_extra": lam_extra,
                                                        "curve": curve, "plateau": plateau.state()}, cfg.keep_checkpoints)
    lam.eval()
    return PretrainResult(
        run_dir=run_dir, lam_dir=run_dir / "lam", step=step, resumed_from=resumed_from, final_loss=loss_value,
        code_usage=[float(u) for u in usage], wall_time_s=elapsed_before + time.time() - t0, history=history,
        curve=curve, plateaued=plateau.stopped if cfg.until_plateau else None,
    )


def _log_check(writer: Any, step: int, errors: dict[str, Any], report: dict[str, Any] | None) -> None:
    """TensorBoard: each check's held-out error per budget and, where computed, what the tokens do."""
    for k, err in errors["mse"].items():
        writer.add_scalar(f"heldout_mse/k_{k}", err, step)
    for k, score in (report or {}).get("controllability", {}).items():
        writer.add_scalar(f"controllability/k_{k}", score, step)
        writer.add_scalar(f"heldout_mse_changed/k_{k}", report["mse_changed"][k]["own"], step)


def update_flops(lam_cfg: LAMConfig, data: TransitionData, cfg: TrainConfig) -> float:
    """FLOPs of one update (forward + backward on a batch of ``cfg.batch_size`` real transitions, with
    ``cfg.prefix_samples``), counted by ``torch.utils.flop_counter``; the optimizer step is not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    lam = FlexLAM(lam_cfg)
    if not lam_cfg.is_image:
        lam.set_obs_stats(*data.obs_stats())
    batch = data.train.__getitems__(np.arange(cfg.batch_size) % len(data.train))
    with FlopCounterMode(display=False) as counter:
        lam(torch.from_numpy(batch["obs"]), torch.from_numpy(batch["next_obs"]), prefix_samples=cfg.prefix_samples).loss.backward()
    return float(counter.get_total_flops())


def _resume_relevant(cfg: TrainConfig) -> dict[str, Any]:
    """Settings that change the trajectory; a restart with different ones is a different run.

    The length (``steps``, ``max_steps``) is not among them: raising it extends a run (see :func:`pretrain`).
    """
    keep = ["batch_size", "lr", "weight_decay", "warmup_steps", "grad_clip", "seed", "prefix_samples", "until_plateau"]
    if cfg.until_plateau:
        keep += ["eval_every", "eval_transitions", "plateau_window", "plateau_tol", "plateau_decays", "plateau_lr_factor"]
    else:
        keep += ["min_lr_ratio"]
    return {k: v for k, v in asdict(cfg).items() if k in keep}


def _progress(cfg: TrainConfig, start: int):
    if not cfg.progress:
        return None
    import sys

    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()  # in logs, a line every 10 s instead of a stream of redraws
    return tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step", dynamic_ncols=True,
                mininterval=0.5 if interactive else 10.0)
