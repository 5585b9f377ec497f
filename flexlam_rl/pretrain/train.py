"""Pretrain a (Flex)LAM on action-free transitions, with checkpoints and exact resume.

Everything random in step ``s`` (batch, prefix lengths) derives from ``(seed, s)``, so a
restarted run resumes from its last checkpoint and ends with the same weights as an
uninterrupted one. The run directory's layout is :mod:`flexlam_rl.pretrain.runs`.
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

from ..checkpoint import atomic_write_json
from ..config import LAMConfig, TrainConfig, plain
from ..data.transitions import TransitionData, step_loader
from ..errors import ConfigError, FlexLAMWarning, TrainingDiverged
from ..evaluate.diagnosis import CollapseWatch, controllability
from ..evaluate.reconstruction import reconstruction_by_budget
from ..fit import seeded
from ..model.lam import FlexLAM
from ..model.quantize import code_usage
from . import distributed
from .plateau import Plateau, heldout_objective, heldout_subset
from .runs import (
    RunLayout,
    check_same_run,
    lam_step,
    latest_checkpoint,
    load_checkpoint,
    remove_stale_temps,
    save_checkpoint,
    set_aside_damaged_checkpoints,
    writer_lock,
)
from .supervision import ActionSupervision, SupervisionConfig

USAGE_WINDOW = 20  # code usage (perplexity) is measured over the tokens of the last this many batches
COLLAPSE_CHECK_AFTER = 500  # updates before a code that does not matter counts as collapsed, not as still warming up
CONTROL_TRANSITIONS = 256  # checked transitions the controllability diagnostic decodes at each check


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


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """The draws of update ``step``; ``stream`` > 0 gives an independent stream (the labeled batch of supervision)."""
    entropy = [seed, step, stream] if stream else [seed, step]
    return torch.Generator().manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))


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


def lam_preset(name: str) -> dict[str, Any]:
    """The LAM options of a Hydra ``lam`` preset (``configs/lam/<name>.yaml``, e.g. ``games``), for code that builds
    LAMs without the CLI: one source for a recipe, so scripts do not restate (and drift from) it."""
    from importlib.resources import files

    from hydra import compose, initialize_config_module

    presets = sorted(p.name.removesuffix(".yaml") for p in files("flexlam_rl.configs").joinpath("lam").iterdir()
                     if p.name.endswith(".yaml"))
    if name not in presets:
        raise ConfigError(f"Unknown LAM preset {name!r}; expected one of {', '.join(presets)} (configs/lam/).")
    with initialize_config_module("flexlam_rl.configs", version_base="1.3"):
        values = dict(plain(compose("pretrain", overrides=[f"lam={name}"]).lam))
    values.pop("name", None)
    return values


def check_data_matches(lam_cfg: LAMConfig, data: TransitionData) -> None:
    if tuple(lam_cfg.obs_shape) != tuple(data.obs_shape):
        raise ConfigError(
            f"LAM obs_shape {list(lam_cfg.obs_shape)} does not match the data's {list(data.obs_shape)}; "
            f"leave lam.obs_shape unset to take it from the data."
        )


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over ``model``'s parameters (the LAM, and an action head when supervised), fused into one kernel where
    this torch and device support it (``fused_optimizer``)."""
    if cfg.fused_optimizer:
        try:
            return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # older torch or an unsupported device: the foreach kernel
            pass
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def pretrain(
    run_dir: str | Path,
    data: TransitionData,
    lam_cfg: LAMConfig,
    cfg: TrainConfig,
    run_info: dict[str, Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    on_check: Callable[[int, dict[str, Any]], None] | None = None,
    supervision: SupervisionConfig | None = None,
) -> PretrainResult:
    """Train (or resume, or extend) a LAM in ``run_dir`` (layout: :mod:`flexlam_rl.pretrain.runs`).

    ``on_step(step, loss)`` is called after every update with the mean training loss of the
    current logging window, as last read from the device; ``on_check(step, report)`` after each
    held-out check with the :func:`~flexlam_rl.evaluate.diagnosis.controllability` report of the checked
    transitions (plus ``mse_checks``, the errors the plateau reads, and ``mse_transitions``, how many it read). A
    second process training into the same ``run_dir`` is refused. Raising ``steps`` (or a plateau run's
    ``max_steps``) extends a run: a plateau run's LR does not depend on its cap, so that is exact; a fixed-length
    run continues its cosine
    schedule over the new length from where it stopped (not bit-identical to a fresh run of that length).
    Under ``torchrun`` each process trains on its shard of every step's batch and rank 0 alone
    writes (:mod:`flexlam_rl.pretrain.distributed`). ``supervision`` (when enabled): action labels on a few transitions train
    a head on the latent beside the reconstruction (:mod:`flexlam_rl.pretrain.supervision`); the LAM records which.
    """
    run_dir = Path(run_dir)
    check_data_matches(lam_cfg, data)
    # the labels are chosen (and bad supervision settings refused) before anything is written
    labeled = ActionSupervision(supervision, lam_cfg, data, cfg.seed) if supervision is not None and supervision.enabled else None
    device = distributed.device_for(resolve_device(cfg.device))
    ctx = distributed.context(device)  # one process, or one of torchrun's (see flexlam_rl.pretrain.distributed)
    if labeled is not None and ctx.active:
        ctx.close()
        raise ConfigError("Action supervision runs in one process for now; drop torchrun, or supervision.fraction=null.")
    run_dir = Path(ctx.broadcast(str(run_dir)))  # ranks started a second apart may have named different default dirs
    record = {"lam": lam_cfg.to_dict(), "train": _resume_relevant(cfg), "datasets": data.dataset_ids,
              "steps": cfg.total_steps, **(run_info or {})}
    if labeled is not None:  # a restart with other labels (or none) is another run
        record["supervision"] = asdict(labeled.cfg)
    try:
        with writer_lock(run_dir) if ctx.is_main else contextlib.nullcontext():
            if ctx.is_main:  # before any run file is written: resume only from a checkpoint that reads whole
                for name, why in set_aside_damaged_checkpoints(run_dir):
                    warnings.warn(f"{run_dir}: checkpoint {name} cannot be read ({why}); set aside as damaged-{name}, "
                                  f"resuming from the newest one that can.", FlexLAMWarning, stacklevel=2)
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
            return _train(_Run(run_dir, data, lam_cfg, cfg, device, ctx, labeled), on_step, on_check)
    finally:
        ctx.close()


def _train(run: _Run, on_step: Callable[[int, float], None] | None,
           on_check: Callable[[int, dict[str, Any]], None] | None = None) -> PretrainResult:
    """The step loop: update, track the loss, check held-out error (and stop on a plateau), save."""
    cfg = run.cfg
    try:
        for batch in run.loader():
            loss = run.update(batch)
            run.track(loss)
            if run.step % cfg.eval_every == 0 and len(run.checks) > 0:
                run.check(on_check)
            run.show_progress(on_step)
            if run.step % cfg.checkpoint_every == 0 or run.step == run.total or run.plateau.stopped:
                run.save()
            if run.plateau.stopped:
                break
    finally:
        run.close()
    return run.finish()


class _Run:
    """One pretraining run's state and the pieces the step loop calls (rank 0 alone writes, logs and decides)."""

    def __init__(self, run_dir: Path, data: TransitionData, lam_cfg: LAMConfig, cfg: TrainConfig, device: torch.device,
                 ctx: distributed.Context, supervision: ActionSupervision | None = None):
        self.run_dir, self.data, self.lam_cfg, self.cfg, self.device, self.ctx = run_dir, data, lam_cfg, cfg, device, ctx
        self.lam = build_lam(lam_cfg, data, cfg.seed).to(device)
        self.model = self.lam if not ctx.active else torch.nn.parallel.DistributedDataParallel(
            self.lam, device_ids=[device.index] if device.type == "cuda" else None)
        self.supervision, self.heads = supervision, {}
        if supervision is not None:
            self.heads = {"action_head": supervision.head.to(device)}
        self.optimizer = make_optimizer(torch.nn.ModuleList([self.lam, *self.heads.values()]), cfg)
        self.step, self.history, self.curve, self.elapsed_before, plateau_state = 0, [], [], 0.0, None
        ckpt = latest_checkpoint(run_dir)
        if ckpt is not None:
            state = load_checkpoint(ckpt, self.lam, self.optimizer, self.heads)
            self.step, self.elapsed_before = int(state["step"]), float(state.get("wall_time_s", 0.0))
            self.history, self.curve, plateau_state = list(state.get("history", [])), list(state.get("curve", [])), state.get("plateau")
        self.resumed_from = self.step
        self.plateau = Plateau(cfg, plateau_state)
        self.checks = heldout_subset(data, cfg.eval_transitions)
        self.check_budgets = None if lam_cfg.nested_dropout else [lam_cfg.num_tokens]  # a fixed LAM is defined at its K alone
        self.total = self.step if self.plateau.stopped else cfg.total_steps
        self.lam_extra = {"datasets": data.dataset_ids, "seed": cfg.seed}
        if self.supervision is not None:
            self.lam_extra["supervision"] = self.supervision.labels.record
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=self.step or None) if ctx.is_main else None
        self.progress = _progress(cfg, self.step) if ctx.is_main else None
        self.t0, self.loss_value = time.time(), float("nan")
        self.usage = torch.full((self.lam.num_tokens,), float("nan"))
        # Host syncs: reading the loss is free on the CPU but stalls a GPU, so there it happens every log_every steps.
        self.sync_every = 1 if device.type == "cpu" else cfg.log_every
        self.recent_tokens: deque[torch.Tensor] = deque(maxlen=USAGE_WINDOW)
        self.window_loss, self.window_steps = torch.zeros((), device=device), 0
        self.window_action = torch.zeros((), device=device)
        self.collapse = CollapseWatch(after=COLLAPSE_CHECK_AFTER)
        self.lam.train()

    def loader(self):
        """Every remaining step's batch (this rank's shard of the global one)."""
        cfg = self.cfg
        return step_loader(self.data.train, cfg.batch_size, cfg.seed, self.step, max(0, self.total - self.step),
                           cfg.num_workers, self.ctx.shard(cfg.batch_size))

    def update(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One optimizer step; the prefix lengths are the global batch's, as one process would draw them."""
        cfg, lam = self.cfg, self.lam
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, cfg, self.plateau.lr_scale)
        prefix = lam.draw_prefix_lens(cfg.batch_size, cfg.prefix_samples, step_generator(cfg.seed, self.step))
        out = self.model(batch["obs"].to(self.device, non_blocking=True), batch["next_obs"].to(self.device, non_blocking=True),
                         prefix_len=prefix[self.ctx.shard(cfg.batch_size)])
        total = out.loss
        if self.supervision is not None:
            action_loss = self.supervision.loss(lam, step_generator(cfg.seed, self.step, stream=1))
            self.window_action += action_loss.detach()
            total = total + action_loss
        self.optimizer.zero_grad(set_to_none=True)
        distributed.backward(total, self.ctx)
        torch.nn.utils.clip_grad_norm_([p for group in self.optimizer.param_groups for p in group["params"]], cfg.grad_clip,
                                       foreach=True)
        self.optimizer.step()
        self.step += 1
        self.recent_tokens.append(out.tokens.detach())
        return out.loss

    def track(self, loss: torch.Tensor) -> None:
        """The logging window's loss; a NaN stops the run unsaved; at log steps, TensorBoard and the history."""
        cfg, step = self.cfg, self.step
        self.window_loss += self.ctx.mean(loss) if self.ctx.active else loss.detach()
        self.window_steps += 1
        log_now = step % cfg.log_every == 0 or step == self.total
        if log_now or step % cfg.checkpoint_every == 0 or step == self.total or step % self.sync_every == 0:
            self.loss_value = self.window_loss.item() / self.window_steps
            if not math.isfinite(self.loss_value):  # NaN/inf weights are never saved: the last checkpoint stays good
                good = latest_checkpoint(self.run_dir)
                raise TrainingDiverged(
                    f"Loss became {self.loss_value} by step {step}; stopped without saving. The last good checkpoint "
                    f"is {good or 'none (nothing saved yet)'}. Lower train.lr (now {cfg.lr}) or check the data for NaN/inf."
                )
        if not log_now:
            return
        self.usage = code_usage(torch.cat(list(self.recent_tokens)).cpu(), self.lam.codebook_size)
        if self.writer is not None:
            self.writer.add_scalar("train/loss", self.loss_value, step)
            self.writer.add_scalar("train/lr", lr_at(step - 1, cfg, self.plateau.lr_scale), step)
            for slot, value in enumerate(self.usage.tolist()):
                self.writer.add_scalar(f"code_usage/slot_{slot + 1}", value, step)
        entry = {"step": step, "loss": self.loss_value}  # means over the steps since the last entry
        if self.supervision is not None:  # the reconstruction loss above; the (weighted) action loss beside it
            entry["action_loss"] = self.window_action.item() / self.window_steps
            if self.writer is not None:
                self.writer.add_scalar("train/action_loss", entry["action_loss"], step)
        self.history.append(entry)
        self.window_loss, self.window_steps = torch.zeros((), device=self.device), 0
        self.window_action = torch.zeros((), device=self.device)

    def check(self, on_check: Callable[[int, dict[str, Any]], None] | None) -> None:
        """Rank 0 scores the checked transitions and decides the plateau; every rank gets its decision."""
        if self.ctx.is_main:
            self._score(on_check)
        if self.cfg.until_plateau:
            self.plateau = Plateau(self.cfg, self.ctx.broadcast(self.plateau.state()))

    def _score(self, on_check: Callable[[int, dict[str, Any]], None] | None) -> None:
        lam, step = self.lam, self.step
        errors = reconstruction_by_budget(lam, self.data.checks, self.check_budgets, indices=self.checks)
        report = controllability(lam, self.data.checks, self.check_budgets, self.checks[:CONTROL_TRANSITIONS])
        self.curve.append({"updates": step, "wall_s": self.elapsed(), "loss": heldout_objective(lam, errors["mse"]),
                           "mse": errors["mse"], "controllability": report["controllability"]})
        if self.supervision is not None:  # how much of the action the supervised tokens hold on the checked transitions
            report["action_head"] = self.curve[-1]["action_head"] = self.supervision.score(
                lam, self.data.checks, self.checks[:CONTROL_TRANSITIONS])
        if self.writer is not None:
            _log_check(self.writer, step, errors, report)
        note = self.collapse.update(step, report, self.lam_cfg.obs_shape)
        if note is not None:
            warnings.warn(note, FlexLAMWarning, stacklevel=2)
        if on_check is not None:
            on_check(step, {**report, "mse_checks": errors["mse"], "mse_transitions": len(self.checks)})
        lam.train()
        if self.cfg.until_plateau:
            self.plateau.update(errors["mse"])

    def show_progress(self, on_step: Callable[[int, float], None] | None) -> None:
        if self.progress is not None:
            self.progress.update(1)
            # the least used slot's perplexity over recent training batches (1.00: a slot that always emits one code)
            self.progress.set_postfix(loss=f"{self.loss_value:.5f}", min_slot_perplexity=f"{float(self.usage.min()):.2f}", refresh=False)
        if on_step is not None:
            on_step(self.step, self.loss_value)

    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.t0

    def save(self) -> None:
        if self.ctx.is_main:
            state = {"seed": self.cfg.seed, "history": self.history, "wall_time_s": self.elapsed(), "code_usage": self.usage.tolist(),
                     "lam_extra": self.lam_extra, "curve": self.curve, "plateau": self.plateau.state()}
            save_checkpoint(self.run_dir, self.lam, self.optimizer, self.step, state, self.cfg.keep_checkpoints, self.heads)

    def close(self) -> None:
        for closable in (self.writer, self.progress):
            if closable is not None:
                closable.close()

    def finish(self) -> PretrainResult:
        """After the loop: every rank waits for rank 0's last checkpoint; a lost lam/ of a finished run is redone."""
        self.ctx.barrier()
        if self.ctx.is_main and self.step == self.resumed_from and self.step > 0 and lam_step(self.run_dir) != self.step:
            self.save()
        self.lam.eval()
        return PretrainResult(
            run_dir=self.run_dir, lam_dir=RunLayout(self.run_dir).lam, step=self.step, resumed_from=self.resumed_from,
            final_loss=self.loss_value, code_usage=[float(u) for u in self.usage], wall_time_s=self.elapsed(),
            history=self.history, curve=self.curve, plateaued=self.plateau.stopped if self.cfg.until_plateau else None,
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
    return tqdm(total=cfg.total_steps, initial=start, desc="pretrain", unit="step", dynamic_ncols=True,
                mininterval=0.5 if interactive else 10.0)
