"""Benchmark work that is expensive and deterministic is cached by a hash of everything it depends on.

Trained LAMs live under ``<cache>/<hash>/`` (a normal pretraining run dir plus ``done.json`` and
any ``lam_at_<updates>/`` snapshots);
translators beside the LAM they were aligned on; PPO runs beside their translator, keyed by the
whole agent config, so changed settings never reuse a stale result.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json, read_json
from ..config import REMOVED_OPTIONS, LAMConfig
from ..data.transitions import TransitionData
from ..errors import ConfigError
from ..model.lam import FlexLAM
from ..pretrain.runs import latest_checkpoint
from ..pretrain.supervision import SupervisionConfig
from ..pretrain.train import TrainConfig, pretrain


def config_hash(obj: Any) -> str:
    """A short, stable hash of a JSON-able description (dict keys sorted)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


# LAM options added while benchmark runs were cached, with the value every earlier run had: part of a run's key only
# when set to something else, so those runs (and the committed seeds keyed by them) stay valid
KEYED_WHEN_SET = {"code_norm": False, "idm_downsample": "stride", "fdm_latent_input": False}


def numerics_key() -> dict[str, int]:
    """The numerics version as a cache key reads it: left out at 1, the version every earlier cache was made under."""
    from .._version import NUMERICS_VERSION

    return {} if NUMERICS_VERSION == 1 else {"numerics": NUMERICS_VERSION}


def lam_key_record(lam_cfg: LAMConfig) -> dict[str, Any]:
    """The LAM config as a cached run's key reads it (options of ``KEYED_WHEN_SET`` only when not at their old value)."""
    kept = {k: v for k, v in lam_cfg.to_dict().items() if not (k in KEYED_WHEN_SET and v == KEYED_WHEN_SET[k])}
    return {**kept, **REMOVED_OPTIONS}  # keys made before the removal named them: the same runs keep their keys


@dataclass
class TrainedLAM:
    """A trained LAM, what its training cost, and (optionally) its snapshot after its first ``snapshot_updates`` updates."""

    lam: FlexLAM
    info: dict[str, Any]  # updates, samples, wall_s, plateaued, curve, run_dir
    snapshot: FlexLAM | None = None  # None: no snapshot asked for, or the run ended before it (the final model stands in)
    snapshot_info: dict[str, Any] | None = None


def train_cached(data: TransitionData, lam_cfg: LAMConfig, train_cfg: TrainConfig, cache_root: Path,
                 snapshot_updates: int | None = None, supervision: SupervisionConfig | None = None) -> TrainedLAM:
    """Train a LAM, or reuse the run trained with exactly this data/config/seed.

    ``snapshot_updates=n`` also keeps the model after n updates (the equal-compute view): a plateau
    run's LR does not depend on its cap, so training to a cap of n and then on is the same trajectory.
    A run's ``max_steps`` is not part of its key: raising the cap extends a capped run. ``supervision`` (action labels
    while it trains) is part of the key when given.
    """
    train_record = {k: v for k, v in asdict(train_cfg).items() if k not in ("max_steps", "progress")}
    key = config_hash({"datasets": data.dataset_ids, "lam": lam_key_record(lam_cfg), "train": train_record,
                       "heldout": [len(data.train), len(data.heldout)], **numerics_key(),
                       **({"validation": len(data.validation)} if data.validation is not None else {}),
                       **({"supervision": asdict(supervision)} if supervision is not None else {})})
    run_dir = cache_root / key
    done, snap_dir = run_dir / "done.json", run_dir / f"lam_at_{snapshot_updates}"
    record = read_json(done, "run summary") if done.is_file() else None
    finished = record is not None and (record["plateaued"] or record["max_steps"] >= train_cfg.total_steps)
    need_snapshot = snapshot_updates is not None and not (snap_dir / "model.safetensors").is_file() and not (
        finished and record["updates"] <= snapshot_updates)
    if need_snapshot:
        if not train_cfg.until_plateau:
            raise ConfigError("A snapshot at a number of updates needs train.until_plateau=true (a cosine schedule depends on its length).")
        last = latest_checkpoint(run_dir)
        if last is not None and int(json.loads((last / "state.json").read_text())["step"]) > snapshot_updates:
            shutil.rmtree(run_dir)  # trained past the snapshot before it was asked for: the only way back is again
        result = pretrain(run_dir, data, lam_cfg, replace(train_cfg, until_plateau=True, max_steps=snapshot_updates),
                          supervision=supervision)
        if result.step >= snapshot_updates:  # it did not plateau first
            FlexLAM.load(result.lam_dir).save(snap_dir, extra={"updates": result.step, "wall_s": result.wall_time_s})
        finished = False
    if not finished:
        result = pretrain(run_dir, data, lam_cfg, train_cfg, supervision=supervision)
        record = {"updates": result.step, "samples": result.step * train_cfg.batch_size, "wall_s": result.wall_time_s,
                  "plateaued": bool(result.plateaued), "max_steps": train_cfg.total_steps, "curve": result.curve,
                  "run_dir": str(run_dir)}
        atomic_write_json(done, record)
    trained = TrainedLAM(FlexLAM.load(run_dir / "lam"), record)
    if snapshot_updates is not None and (snap_dir / "model.safetensors").is_file():
        trained.snapshot = FlexLAM.load(snap_dir)
        trained.snapshot_info = {"updates": int(trained.snapshot.extra["updates"]), "wall_s": float(trained.snapshot.extra["wall_s"]),
                                 "plateaued": False}
    return trained


def translator_dir(lam: FlexLAM, description: dict[str, Any]) -> Path:
    """Where the translator aligned on ``lam`` with these labels/settings is saved (PPO loads it by path)."""
    return Path(lam.source_path).parent / f"translator_{config_hash(description)}"


def ppo_cached(agent_cfg: Any, translator: Path) -> float:
    """PPO in latent space: mean return of its last 20 training episodes (run once per agent config)."""
    from ..agents.train import train_agent

    run = translator.parent / f"ppo_{translator.name}_{config_hash(asdict(agent_cfg))}"
    done = run / "agent_metrics.json"
    if done.is_file():
        return float(read_json(done, "agent metrics")["train_return_last20"])
    return train_agent(agent_cfg, run).train_return
