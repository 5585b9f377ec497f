"""Pretrain a (Flex)LAM on action-free transitions, with checkpoints and exact resume.

Run directory::

    run_dir/
      run.json                 data ids, LAM and training config (a restart must match)
      lam/                     the latest LAM: model.safetensors + config.json (FlexLAM.load)
      checkpoints/latest       name of the newest complete checkpoint
      checkpoints/step_000500/ model + optimizer (safetensors) + state.json
      tb/                      TensorBoard: loss, per-slot code usage, held-out error per budget

Everything random in step ``s`` (batch, prefix lengths) derives from ``(seed, s)``,
so a restarted run resumes from its last checkpoint and ends with the same weights
as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import (
    atomic_save_tensors,
    atomic_write_bytes,
    atomic_write_json,
    load_state_strict,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_json,
    read_tensors,
)
from .config import LAMConfig, check_positive_ints, plain
from .data import TransitionData, step_loader
from .errors import ConfigError, TrainingDiverged
from .evaluate import reconstruction_by_budget
from .fit import seeded
from .model import FlexLAM
from .quantize import code_usage


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

    def __post_init__(self) -> None:
        check_positive_ints("train", self, ("steps", "batch_size", "checkpoint_every", "log_every", "eval_every",
                                            "keep_checkpoints"))
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}.")


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


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} asked for, but CUDA is not available; use device=cpu or device=auto.")
    return torch.device(device)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup then cosine decay to ``min_lr_ratio * lr``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


# ----------------------------------------------------------------- checkpoints
def _checkpoint_dirs(run_dir: Path) -> list[Path]:
    root = run_dir / "checkpoints"
    return sorted(p for p in root.glob("step_*") if (p / "state.json").is_file()) if root.is_dir() else []


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (via ``checkpoints/latest``, else the highest step)."""
    pointer = run_dir / "checkpoints" / "latest"
    if pointer.is_file():
        candidate = run_dir / "checkpoints" / pointer.read_text().strip()
        if (candidate / "state.json").is_file():
            return candidate
    dirs = _checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def save_checkpoint(run_dir: Path, lam: FlexLAM, optimizer: torch.optim.Optimizer, step: int, state: dict, keep: int) -> Path:
    """Write a step folder (temp name, then rename), repoint ``latest``, refresh ``lam/``, prune."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
    atomic_save_tensors(tmp / "model.safetensors", lam.state_dict())
    atomic_save_tensors(tmp / "optimizer.safetensors", opt_tensors)
    atomic_write_json(tmp / "state.json", {**state, "step": step, "optimizer": opt_meta})
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    atomic_write_bytes(root / "latest", name.encode())
    lam.save(run_dir / "lam", extra={"step": step, "run_dir": str(run_dir), **state.get("lam_extra", {})})
    for old in _checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(ckpt: Path, lam: FlexLAM, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    state = read_json(ckpt / "state.json", "checkpoint state")
    load_state_strict(lam, read_tensors(ckpt / "model.safetensors"), str(ckpt))
    optimizer_from_tensors(optimizer, read_tensors(ckpt / "optimizer.safetensors"), state["optimizer"])
    return state


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


def pretrain(
    run_dir: str | Path,
    data: TransitionData,
    lam_cfg: LAMConfig,
    cfg: TrainConfig,
    run_info: dict[str, Any] | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> PretrainResult:
    """Train (or resume) a LAM in ``run_dir``; see the module docstring for the layout."""
    run_dir = Path(run_dir)
    check_data_matches(lam_cfg, data)
    device = resolve_device(cfg.device)
    record = {"lam": lam_cfg.to_dict(), "train": _resume_relevant(cfg), "datasets": data.dataset_ids, **(run_info or {})}
    _check_same_run(run_dir, record)
    run_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(run_dir)
    atomic_write_json(run_dir / "run.json", record)

    lam = build_lam(lam_cfg, data, cfg.seed).to(device)
    optimizer = torch.optim.AdamW(lam.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, history, elapsed_before = 0, [], 0.0
    ckpt = latest_checkpoint(run_dir)
    if ckpt is not None:
        state = load_checkpoint(ckpt, lam, optimizer)
        start, history, elapsed_before = int(state["step"]), list(state.get("history", [])), float(state.get("wall_time_s", 0.0))
    resumed_from = start
    lam_extra = {"datasets": data.dataset_ids, "seed": cfg.seed}

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run_dir / "tb"), purge_step=start if start else None)
    loader = step_loader(data.train, cfg.batch_size, cfg.seed, start, max(0, cfg.steps - start), cfg.num_workers)
    progress = _progress(cfg, start)
    t0, loss_value, usage = time.time(), float("nan"), torch.full((lam.num_tokens,), float("nan"))
    recent_tokens: list[torch.Tensor] = []
    lam.train()
    step = start
    try:
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
            out = lam(batch["obs"].to(device), batch["next_obs"].to(device), generator=step_generator(cfg.seed, step))
            if not torch.isfinite(out.loss):
                good = latest_checkpoint(run_dir)
                raise TrainingDiverged(
                    f"Loss became {out.loss.item()} at step {step}; stopped without saving. The last good checkpoint "
                    f"is {good or 'none (nothing saved yet)'}. Lower train.lr (now {cfg.lr}) or check the data for NaN/inf."
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(lam.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            loss_value = out.loss.item()
            recent_tokens.append(out.tokens.detach().cpu())
            if step % cfg.log_every == 0 or step == cfg.steps:
                usage = code_usage(torch.cat(recent_tokens[-20:]), lam.codebook_size)
                recent_tokens = recent_tokens[-20:]
                writer.add_scalar("train/loss", loss_value, step)
                writer.add_scalar("train/lr", lr_at(step - 1, cfg), step)
                for slot, value in enumerate(usage.tolist()):
                    writer.add_scalar(f"code_usage/slot_{slot + 1}", value, step)
                history.append({"step": step, "loss": loss_value})
            if step % cfg.eval_every == 0 and len(data.heldout) > 0:
                errors = reconstruction_by_budget(lam, data.heldout, limit=cfg.eval_transitions)
                for k, err in errors["mse"].items():
                    writer.add_scalar(f"heldout_mse/k_{k}", err, step)
                lam.train()
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss_value:.5f}", min_code_usage=f"{float(usage.min()):.2f}", refresh=False)
            if on_step is not None:
                on_step(step, loss_value)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                state = {"seed": cfg.seed, "history": history, "wall_time_s": elapsed_before + time.time() - t0,
                         "code_usage": usage.tolist(), "lam_extra": lam_extra}
                save_checkpoint(run_dir, lam, optimizer, step, state, cfg.keep_checkpoints)
    finally:
        writer.close()
        if progress is not None:
            progress.close()
    if step == start and start > 0 and not (run_dir / "lam" / "model.safetensors").is_file():
        save_checkpoint(run_dir, lam, optimizer, step, {"seed": cfg.seed, "history": history, "lam_extra": lam_extra},
                        cfg.keep_checkpoints)
    lam.eval()
    return PretrainResult(
        run_dir=run_dir, lam_dir=run_dir / "lam", step=step, resumed_from=resumed_from, final_loss=loss_value,
        code_usage=[float(u) for u in usage], wall_time_s=elapsed_before + time.time() - t0, history=history,
    )


def run_pretraining(
    run_dir: str | Path, data: TransitionData, lam_cfg: LAMConfig, cfg: TrainConfig,
    budgets: list[int] | None = None, run_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or resume) in ``run_dir``, score every budget on the held-out split, write ``metrics.json``.

    Returns the metrics: ``step``, ``resumed_from``, ``wall_time_s``, ``heldout`` (see
    :func:`~flexlam_rl.evaluate.reconstruction_by_budget`), ``datasets``, ``lam`` and ``lam_dir``.
    """
    run_dir = Path(run_dir)
    result = pretrain(run_dir, data, lam_cfg, cfg, run_info=run_info)
    evaluation = reconstruction_by_budget(FlexLAM.load(result.lam_dir), data.heldout, budgets)
    metrics = {"step": result.step, "resumed_from": result.resumed_from, "wall_time_s": result.wall_time_s,
               "heldout": evaluation, "datasets": data.dataset_ids, "lam": lam_cfg.to_dict(), "lam_dir": str(result.lam_dir)}
    atomic_write_json(run_dir / "metrics.json", metrics)
    return metrics


def _remove_stale_temps(run_dir: Path) -> None:
    """Temp files a killed run left mid-write (never the real files, which are only renamed into place)."""
    for pattern in ("checkpoints/.tmp-step_*", "**/.*.tmp", "**/.*.tmp.*"):
        for path in run_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _resume_relevant(cfg: TrainConfig) -> dict[str, Any]:
    """Settings that change the trajectory; a restart with different ones is a different run."""
    keep = ("batch_size", "lr", "weight_decay", "warmup_steps", "min_lr_ratio", "grad_clip", "seed", "steps")
    return {k: v for k, v in asdict(cfg).items() if k in keep}


def _check_same_run(run_dir: Path, record: dict[str, Any]) -> None:
    path = run_dir / "run.json"
    if not path.is_file() or latest_checkpoint(run_dir) is None:
        return
    previous = read_json(path, "run record")
    for key in ("lam", "train", "datasets"):
        old, new = previous.get(key), json.loads(json.dumps(record[key]))
        if old != new:
            if isinstance(old, dict) and isinstance(new, dict):
                changed = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                                    if old.get(k) != new.get(k))
            else:
                changed = f"{old!r} -> {new!r}"
            raise ConfigError(
                f"{run_dir} already holds a run with a different '{key}' config ({changed}), so it cannot resume it. "
                f"Use a new run_dir, or delete {run_dir} to start over."
            )


def _progress(cfg: TrainConfig, start: int):
    if not cfg.progress:
        return None
    import sys

    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()  # in logs, a line every 10 s instead of a stream of redraws
    return tqdm(total=cfg.steps, initial=start, desc="pretrain", unit="step", dynamic_ncols=True,
                mininterval=0.5 if interactive else 10.0)
