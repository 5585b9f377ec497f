"""``flexlam-latent-bc`` as a library call: clone the IDM's tokens on expert data, score every budget against the
baselines, save the policy and its metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..align import Translator
from ..checkpoint import atomic_write_json
from ..data.transitions import load_transitions
from ..errors import DataError
from ..media import write_gif
from ..model.lam import FlexLAM
from ..pretrain.runs import RunLayout, default_translator_dir
from .baselines import baseline_returns
from .latent_bc import (
    Episodes,
    LatentBCTrainConfig,
    evaluate_adaptive_latent_bc,
    evaluate_latent_bc,
    latent_env,
    train_latent_bc,
)
from .wrappers import lam_env


@dataclass
class LatentBCScoring:
    """How latent BC is scored: at ``budgets`` (default every k) over ``episodes`` (their step cap caps every scored
    episode: the policy's, the baselines', the GIF's; None keeps the task's own limit, thousands of steps on the Atari
    tasks, where a policy that never loses plays them all), with a GIF at the best budget (``gif``), and with
    ``adaptive_tol`` also an adaptive-length policy (:func:`train_latent_bc` with ``tol``)."""

    budgets: Sequence[int] | None = None
    episodes: Episodes = field(default_factory=lambda: Episodes(20, 10_000))
    gif: bool = True
    adaptive_tol: float | None = None


def run_latent_bc(
    lam_dir: str | Path, env: str, expert_datasets: Sequence[str], train_cfg: LatentBCTrainConfig, *,
    translator_dir: str | Path | None = None, scoring: LatentBCScoring | None = None, out: str | Path | None = None,
) -> dict[str, Any]:
    """``flexlam-latent-bc`` as a library call: clone on ``expert_datasets`` (actions never read), score
    every budget on ``env`` beside random actions, the scripted expert and true-action BC on the same expert data
    (:mod:`flexlam_rl.act.baselines`; the normalized score per budget), save the policy (default ``<lam_dir>/../latent_bc``),
    a GIF at the best budget and ``latent_bc_metrics.json``; returns those metrics. ``scoring``: :class:`LatentBCScoring`
    (an adaptive-length policy is saved to ``<out>_adaptive``)."""
    scoring = scoring or LatentBCScoring()
    episodes, max_episode_steps = scoring.episodes, scoring.episodes.max_steps
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
    budgets = list(scoring.budgets) if scoring.budgets else list(range(1, lam.num_tokens + 1))
    by_budget = evaluate_latent_bc(policy, lam, translator, env, budgets, episodes)
    with lam_env(env, lam, max_episode_steps=max_episode_steps) as raw:
        baselines = baseline_returns(raw, env, episodes.count, episodes.seed, expert,
                                     (train_cfg, list(lam.config.channels), lam.config.hidden_dim), max_episode_steps)
    out = Path(out) if out else RunLayout.of_lam(lam_dir).latent_bc
    policy.save(out, extra={"lam": str(lam_dir.resolve()), "lam_fingerprint": lam.fingerprint(),
                            "expert_datasets": list(expert_datasets), "train": asdict(train_cfg), "training": training,
                            "returns": by_budget})
    best = max(by_budget, key=lambda k: by_budget[k]["mean"])
    gif_path = None
    if scoring.gif:
        frames: dict[int, list[np.ndarray]] = {}
        evaluate_latent_bc(policy, lam, translator, env, [best], replace(episodes, count=1), gif_frames=frames)
        gif_path = write_gif(frames[best], out.parent / f"latent_bc_k{best}.gif")
    metrics = {"returns": by_budget, "random": {"mean": baselines.random, "stderr": baselines.stderr["random"]},
               "baselines": baselines.to_dict(), "normalized": {k: baselines.normalized(v["mean"]) for k, v in by_budget.items()},
               "training": training, "head": policy.config.head, "frame_stack": policy.config.frame_stack,
               "env": env, "episodes": episodes.count, "max_episode_steps": max_episode_steps, "expert_transitions": len(expert),
               "best_budget": best,
               "policy": str(out.resolve()), "gif": str(gif_path) if gif_path else None}
    if scoring.adaptive_tol is not None:
        adaptive = train_latent_bc(lam, expert, train_cfg, tol=scoring.adaptive_tol)
        metrics["adaptive"] = {"tol": scoring.adaptive_tol, **evaluate_adaptive_latent_bc(adaptive, lam, translator, env, episodes)}
        adaptive.save(out.parent / f"{out.name}_adaptive", extra={"lam": str(lam_dir.resolve()), "tol": scoring.adaptive_tol,
                                                                  "lam_fingerprint": lam.fingerprint(), "returns": metrics["adaptive"]})
    atomic_write_json(RunLayout(out.parent).latent_bc_metrics, metrics)  # beside the policy, wherever it went
    return metrics
