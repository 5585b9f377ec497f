"""A run directory: where each stage puts its part (:class:`RunLayout`, the one place that says so), and for
pretraining its checkpoints, run record, resume checks and cleanup after a crash.

::

    run_dir/
      run.json                 data ids, LAM and training config (a restart must match)
      metrics.json             what flexlam-pretrain scored at the end
      lam/                     the latest LAM: model.safetensors + config.json (FlexLAM.load)
      checkpoints/latest       name of the newest complete checkpoint
      checkpoints/step_000500/ model + optimizer (safetensors) + state.json (+ action_head.safetensors when supervised)
      tb/                      TensorBoard: loss, per-slot code usage, held-out error per budget
      translator/              flexlam-align's translator, align_metrics.json beside it
      latent_bc/               flexlam-latent-bc's policy, latent_bc_metrics.json beside it
      agent/                   flexlam-train-agent's agent (model.zip, agent_metrics.json)
      analysis/                flexlam-analyze's reports
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import (
    atomic_save_tensors,
    atomic_write_bytes,
    atomic_write_json,
    load_state_strict,
    optimizer_from_tensors,
    optimizer_to_tensors,
    read_json,
    read_tensors,
)
from ..config import LAMConfig
from ..errors import CheckpointError, ConfigError, FlexLAMError
from ..model.lam import FlexLAM


def _part(*names: str) -> property:
    return property(lambda self: self.root.joinpath(*names))


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """Where each stage of one run puts its part, under ``root`` (the layout in this module's docstring): every tool
    that writes or looks for a part asks here, so a part is never looked for where it is not put."""

    root: Path

    @classmethod
    def of_lam(cls, lam_dir: str | Path) -> RunLayout:
        """The run a LAM directory belongs to (its parent)."""
        return cls(Path(lam_dir).parent)

    lam = _part("lam")
    translator = _part("translator")
    align_metrics = _part("align_metrics.json")
    latent_bc = _part("latent_bc")
    latent_bc_metrics = _part("latent_bc_metrics.json")
    agent = _part("agent")
    agent_metrics = _part("agent", "agent_metrics.json")
    analysis = _part("analysis")


def default_translator_dir(lam_dir: str | Path) -> Path:
    """Where flexlam-align puts the translator of the LAM at ``lam_dir`` unless told otherwise, and where every
    tool looks for it: beside the LAM, in its run folder."""
    return RunLayout.of_lam(lam_dir).translator


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


def verify_checkpoint(ckpt: Path) -> None:
    """Read a checkpoint whole (state, weights, optimizer, any head trained beside the LAM) without using it: a
    :class:`CheckpointError` naming the damaged file when any of it cannot be read."""
    state = read_json(ckpt / "state.json", "checkpoint state")
    if "step" not in state or "optimizer" not in state:
        raise CheckpointError(f"{ckpt / 'state.json'} lacks its step or optimizer record; the checkpoint is incomplete.")
    read_tensors(ckpt / "model.safetensors")
    read_tensors(ckpt / "optimizer.safetensors")
    for head in sorted(set(ckpt.glob("*.safetensors")) - {ckpt / "model.safetensors", ckpt / "optimizer.safetensors"}):
        read_tensors(head)  # an action head (supervised pretraining): resumed from with the rest


def set_aside_damaged_checkpoints(run_dir: Path) -> list[tuple[str, str]]:
    """Before a run resumes (and before it writes anything else): verify its checkpoints newest first; each that
    cannot be read is renamed ``checkpoints/damaged-step_*`` (kept for a look, never resumed from) and ``latest``
    repointed at the newest one that can. Returns ``(name, why)`` per checkpoint set aside. When none can be read,
    a :class:`CheckpointError` says which were tried and how to start over; nothing is changed then."""
    candidates = sorted(_checkpoint_dirs(run_dir), reverse=True)
    damaged: list[tuple[Path, str]] = []
    for ckpt in candidates:
        try:
            verify_checkpoint(ckpt)
        except CheckpointError as exc:
            damaged.append((ckpt, str(exc)))
            continue
        for bad, _ in damaged:
            bad.rename(bad.with_name(f"damaged-{bad.name}"))
        if damaged:
            atomic_write_bytes(run_dir / "checkpoints" / "latest", ckpt.name.encode())
        return [(bad.name, why) for bad, why in damaged]
    if damaged:
        names = ", ".join(bad.name for bad, _ in damaged)
        raise CheckpointError(f"No checkpoint of {run_dir} can be read ({names}; the newest: {damaged[0][1]}). Delete "
                              f"{run_dir / 'checkpoints'} to train again from scratch, or train into another run_dir.")
    return []


def save_checkpoint(run_dir: Path, lam: FlexLAM, optimizer: torch.optim.Optimizer, step: int, state: dict, keep: int,
                    heads: dict[str, torch.nn.Module] | None = None) -> Path:
    """Write a step folder (temp name, then rename), repoint ``latest``, refresh ``lam/``, prune. ``heads``: modules
    trained beside the LAM (an action head), saved as ``<name>.safetensors`` in the step folder only."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
    try:
        atomic_save_tensors(tmp / "model.safetensors", lam.state_dict())
        atomic_save_tensors(tmp / "optimizer.safetensors", opt_tensors)
        for head, module in (heads or {}).items():
            atomic_save_tensors(tmp / f"{head}.safetensors", module.state_dict())
        atomic_write_json(tmp / "state.json", {**state, "step": step, "optimizer": opt_meta})
    except BaseException:  # a full disk, a kill: the previous checkpoint stays the latest, no half folder stays
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    atomic_write_bytes(root / "latest", name.encode())
    lam.save(RunLayout(run_dir).lam, extra={"step": step, "run_dir": str(run_dir), **state.get("lam_extra", {})})
    for old in _checkpoint_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def lam_step(run_dir: Path) -> int | None:
    """The step of the model in ``run_dir/lam`` (None when there is none, or it cannot be read)."""
    try:
        return int(read_json(RunLayout(run_dir).lam / "config.json")["extra"]["step"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


def load_checkpoint(ckpt: Path, lam: FlexLAM, optimizer: torch.optim.Optimizer,
                    heads: dict[str, torch.nn.Module] | None = None) -> dict[str, Any]:
    state = read_json(ckpt / "state.json", "checkpoint state")
    load_state_strict(lam, read_tensors(ckpt / "model.safetensors"), str(ckpt))
    for name, module in (heads or {}).items():
        load_state_strict(module, read_tensors(ckpt / f"{name}.safetensors"), str(ckpt))
    optimizer_from_tensors(optimizer, read_tensors(ckpt / "optimizer.safetensors"), state["optimizer"])
    return state


def remove_stale_temps(run_dir: Path) -> None:
    """Temp files a killed run left mid-write (never the real files, which are only renamed into place)."""
    for pattern in ("checkpoints/.tmp-step_*", "**/.*.tmp", "**/.*.tmp.*"):
        for path in run_dir.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def writer_lock(run_dir: Path) -> Iterator[None]:
    """One training process per run directory: a second one is refused at once, with the first one named.

    The lock is an OS file lock (``filelock``), so it dies with its process: a killed run never leaves
    its directory locked.
    """
    from filelock import FileLock, Timeout

    run_dir.mkdir(parents=True, exist_ok=True)
    lock, owner = FileLock(str(run_dir / ".writer.lock")), run_dir / ".writer.json"
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            who = read_json(owner, "run owner")
            holder = f"pid {who.get('pid')} on {who.get('host')}, since {who.get('since')}: {who.get('command')}"
        except CheckpointError:
            holder = "its owner record is not written yet"
        raise FlexLAMError(f"{run_dir} is being trained by another process ({holder}). Wait for it to finish, stop it, "
                           f"or train into another run_dir.") from None
    try:
        atomic_write_json(owner, {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


LAM_DEFAULTS = json.loads(json.dumps({f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                                      for f in dataclasses.fields(LAMConfig) if f.name != "obs_shape"}))


def check_same_run(run_dir: Path, record: dict[str, Any]) -> int | None:
    """A restart must train the same model on the same data with the same trajectory settings.

    Returns the length the run had before (None for a new run)."""
    path = run_dir / "run.json"
    if not path.is_file() or latest_checkpoint(run_dir) is None:
        return None
    previous = read_json(path, "run record")
    for key in ("lam", "train", "datasets", "supervision"):  # supervision: absent when off, in both records
        old, new = previous.get(key), json.loads(json.dumps(record.get(key)))
        if key == "lam" and isinstance(old, dict):  # options added since the run was saved: it had their defaults
            old = {**LAM_DEFAULTS, **old}
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
    return previous.get("steps")
