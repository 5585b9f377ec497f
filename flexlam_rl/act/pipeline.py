"""``flexlam-latent-bc`` as a library call: clone the IDM's tokens on expert data, score every budget against the
baselines, save the policy and its metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..align import Translator
from ..checkpoint import atomic_write_json
from ..config import check_optional_positive_int
from ..data.transitions import load_transitions
from ..errors import DataError
from ..media import write_gif
from ..model.lam import FlexLAM
from ..pretrain.runs import default_translator_dir
from .baselines import baseline_returns
from .latent_bc import (
    LatentBCTrainConfig,
    evaluate_adaptive_latent_bc,
    evaluate_latent_bc,
    latent_env,
    train_latent_bc,
)
from .wrappers import lam_env


def run_latent_bc(
    lam_dir: str | Path, env: str, expert_datasets: Sequence[str], train_cfg: LatentBCTrainConfig, *,
    translator_dir: str | Path | None = None, budgets: Sequence[int] | None = None, episodes: int = 20, seed: int = 10_000,
    out: str | Path | None = None, gif: bool = True, adaptive_tol: float | None = None, max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """``flexlam-latent-bc`` as a library call: clone on ``expert_datasets`` (actions never read), score
    every budget on ``env`` beside random actions, the scripted expert and true-action BC on the same expert data
    (:mod:`flexlam_rl.act.baselines`; the normalized score per budget), save the policy (default ``<lam_dir>/../latent_bc``),
    a GIF at the best budget and ``latent_bc_metrics.json``; returns those metrics. ``adaptive_tol``: also
    train and score an adaptive-length policy (:func:`train_latent_bc` with ``tol``), saved to ``<out>_adaptive``.
    ``max_episode_steps`` caps every scored episode (the policy's, the random floor's, the GIF's): None keeps the
    task's own limit (thousands of steps on the Atari tasks, where a policy that never loses plays them all)."""
    check_optional_positive_int("max_episode_steps", max_episode_steps, "the task's own limit")  # before anything loads
    lam_dir = Path(lam_dir)
    lam = FlexLAM.load(lam_dir)
    translator = Translator.load(Path(translator_dir) if translator_dir else default_translator_dir(lam_dir))
    expert = load_transitions(list(expert_datasets), 0.0, 0).train
    for source in expert.sources:  # everything is checked before anything trains
        if tuple(source.obs_shape) != tuple(lam.config.obs_shape):
            raise DataError(f"Expert dataset {source.describe()} does not fit the LAM at {lam_dir}, which reads observations "
                            f"{lam.config.obs_shape} (preprocessing {lam.config.preprocess}); collect expert data with the "
                            f"LAM's preprocessing.")
    latent_env(env, lam, translator, 1).close()  # the env must fit the LAM's observations and the translator's actions
    training: dict[str, Any] = {}
    policy = train_latent_bc(lam, expert, train_cfg, record=training)
    budgets = list(budgets) if budgets else list(range(1, lam.num_tokens + 1))
    by_budget = evaluate_latent_bc(policy, lam, translator, env, budgets, episodes, seed, max_episode_steps=max_episode_steps)
    with lam_env(env, lam, max_episode_steps=max_episode_steps) as raw:
        baselines = baseline_returns(raw, env, episodes, seed, expert, (train_cfg, list(lam.config.channels), lam.config.hidden_dim),
                                     max_episode_steps)
    out = Path(out) if out else lam_dir.parent / "latent_bc"
    policy.save(out, extra={"lam": str(lam_dir.resolve()), "lam_fingerprint": lam.fingerprint(),
                            "expert_datasets": list(expert_datasets), "train": asdict(train_cfg), "training": training,
                            "returns": by_budget})
    best = max(by_budget, key=lambda k: by_budget[k]["mean"])
    gif_path = None
    if gif:
        frames: dict[int, list[np.ndarray]] = {}
        evaluate_latent_bc(policy, lam, translator, env, [best], 1, seed, gif_frames=frames, max_episode_steps=max_episode_steps)
        gif_path = write_gif(frames[best], out.parent / f"latent_bc_k{best}.gif")
    metrics = {"returns": by_budget, "random": {"mean": baselines.random, "stderr": baselines.stderr["random"]},
               "baselines": baselines.to_dict(), "normalized": {k: baselines.normalized(v["mean"]) for k, v in by_budget.items()},
               "training": training, "head": policy.config.head, "frame_stack": policy.config.frame_stack,
               "env": env, "episodes": episodes, "max_episode_steps": max_episode_steps, "expert_transitions": len(expert),
               "best_budget": best,
               "policy": str(out.resolve()), "gif": str(gif_path) if gif_path else None}
    if adaptive_tol is not None:
        adaptive = train_latent_bc(lam, expert, train_cfg, tol=adaptive_tol)
        metrics["adaptive"] = {"tol": adaptive_tol, **evaluate_adaptive_latent_bc(adaptive, lam, translator, env, episodes, seed,
                                                                                      max_episode_steps)}
        adaptive.save(out.parent / f"{out.name}_adaptive", extra={"lam": str(lam_dir.resolve()), "tol": adaptive_tol,
                                                                  "lam_fingerprint": lam.fingerprint(), "returns": metrics["adaptive"]})
    atomic_write_json(out.parent / "latent_bc_metrics.json", metrics)
    return metrics
