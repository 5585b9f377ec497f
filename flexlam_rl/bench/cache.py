"""Benchmark work that is expensive and deterministic is cached by a hash of everything it depends on.

Trained LAMs live under ``<cache>/<hash>/`` (a normal pretraining run dir plus ``done.json``);
translators beside the LAM they were aligned on; PPO runs beside their translator, keyed by the
whole agent config, so changed settings never reuse a stale result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_json, read_json
from ..config import LAMConfig
from ..data import TransitionData
from ..model import FlexLAM
from ..train import TrainConfig, pretrain


def config_hash(obj: Any) -> str:
    """A short, stable hash of a JSON-able description (dict keys sorted)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_cached(data: TransitionData, lam_cfg: LAMConfig, train_cfg: TrainConfig, cache_root: Path) -> tuple[FlexLAM, dict]:
    """Train a LAM, or reuse the one trained with exactly this data/config/seed: ``(lam, info)``."""
    key = config_hash({"datasets": data.dataset_ids, "lam": lam_cfg.to_dict(), "train": asdict(train_cfg),
                       "heldout": [len(data.train), len(data.heldout)]})
    run_dir = cache_root / key
    done = run_dir / "done.json"
    if done.is_file():
        return FlexLAM.load(run_dir / "lam"), {**read_json(done), "cached": True}
    result = pretrain(run_dir, data, lam_cfg, train_cfg)
    info = {"wall_time_s": result.wall_time_s, "steps": result.step, "run_dir": str(run_dir)}
    atomic_write_json(done, info)
    return FlexLAM.load(result.lam_dir), {**info, "cached": False}


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
