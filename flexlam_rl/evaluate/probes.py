"""What the tokens encode: probes from the first k tokens to the true action and to the distractors.

On tasks with action-independent variation (``point-reach-pixels-d*``, ``minigrid-dynamic``) a
transition's next frame depends on the action *and* on things the agent does not control. A probe
is a small MLP trained on the one-hot first k tokens of a transition to predict (a) the action
(accuracy, or R^2 for Box actions) and (b) the distractors' change over the step (R^2). Scores are
on held-out episodes. Do FlexLAM's first tokens carry the action, or the distractor?

The probe data are fresh rollouts of the task (an epsilon-noised expert, seen as the LAM sees
them), because distractor state is not part of the observations a dataset stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..fit import FitConfig, Validation, fit, seeded
from ..metrics import action_score
from ..model.lam import FlexLAM


def distractor_state(env: gym.Env, info: Mapping[str, Any]) -> np.ndarray | None:
    """The action-independent state of a task, flat: PointReach's dots and brightness, MiniGrid's
    moving obstacles; ``None`` on a task without any."""
    if "distractors" in info:
        return np.concatenate([np.asarray(info["distractors"], np.float32).ravel(), np.atleast_1d(info.get("flicker", 1.0))])
    obstacles = getattr(env.unwrapped, "obstacles", None)
    if obstacles:
        return np.asarray([p for ball in obstacles for p in ball.cur_pos], np.float32)
    return None


def probe_rollouts(task: str, lam: FlexLAM, episodes: int = 40, seed: int = 50_000, epsilon: float = 0.5) -> dict[str, np.ndarray]:
    """``episodes`` noisy-expert episodes of ``task`` at ``lam``'s preprocessing: ``obs``, ``next_obs``,
    ``action``, ``distractor`` (the change of :func:`distractor_state` over the step) and ``episode``."""
    from ..act.wrappers import lam_env
    from ..envs import get_task
    from ..envs.experts import make_behaviour

    env = lam_env(task, lam)
    policy = make_behaviour("noisy", env.action_space, get_task(task).expert, seed, epsilon)
    rows: dict[str, list] = {"obs": [], "next_obs": [], "action": [], "distractor": [], "episode": []}
    for i in range(episodes):
        obs, info = env.reset(seed=seed + i)
        state = distractor_state(env, info)
        if state is None:
            raise DataError(f"Task {task!r} has no action-independent state to probe; use point-reach-pixels-d1/-d3/-d3f "
                            f"or minigrid-dynamic.")
        done = False
        while not done:
            action = policy(env)
            next_obs, _, terminated, truncated, info = env.step(action)
            next_state = distractor_state(env, info)
            for key, value in (("obs", obs), ("next_obs", next_obs), ("action", np.asarray(action)),
                               ("distractor", next_state - state), ("episode", i)):
                rows[key].append(value)
            obs, state, done = next_obs, next_state, terminated or truncated
    env.close()
    return {key: np.stack(value) for key, value in rows.items()}


def fit_probe(features: np.ndarray, target: np.ndarray, train: np.ndarray, discrete: bool, seed: int = 0,
              steps: int = 400, hidden: int = 64, valid: np.ndarray | None = None) -> float:
    """A 1-hidden-layer MLP probe; its accuracy (``discrete``) or R^2 (targets standardized) on the rows in
    neither ``train`` nor ``valid``.

    With ``valid`` rows the probe keeps the weights of its lowest validation loss (early stopping): one-hot
    token features of many tokens are easy to memorize, and a memorizing probe scores below what the tokens
    carry (held-out R^2 far below 0), which would read as "more tokens, less information".
    """
    x = torch.as_tensor(features, dtype=torch.float32)
    if discrete:
        y = torch.as_tensor(target, dtype=torch.long).ravel()
        classes = int(y.max()) + 1
    else:
        y = torch.as_tensor(target, dtype=torch.float32).reshape(len(target), -1)
        y = y[:, y[train].std(0) > 1e-6]  # a constant dimension (no flicker, an obstacle boxed in) says nothing
        if y.shape[1] == 0:
            raise DataError("The probe target never varies in the training episodes; collect more or longer episodes.")
        y = (y - y[train].mean(0)) / y[train].std(0)
    test = ~train if valid is None else ~(train | valid)
    with seeded(seed):
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                                  torch.nn.Linear(hidden, classes if discrete else y.shape[1]))
    loss_fn = F.cross_entropy if discrete else F.mse_loss
    xt, yt = x[train], y[train]
    # full-batch Adam (AdamW without decay): the probe set is small and the minibatch indices go unused
    fit(net, lambda idx, gen: loss_fn(net(xt), yt), len(xt), FitConfig(steps=steps, lr=1e-2, weight_decay=0.0, seed=seed),
        None if valid is None else Validation(lambda: loss_fn(net(x[valid]), y[valid])))
    with torch.no_grad():
        pred = net(x[test])
    return action_score((pred.argmax(1) if discrete else pred).numpy(), y[test].numpy(), discrete)


def token_features(tokens: np.ndarray, k: int, codebook_size: int) -> np.ndarray:
    """One-hot first k tokens of ``tokens [N, K]``: ``[N, k * V]``."""
    return np.eye(codebook_size, dtype=np.float32)[tokens[:, :k]].reshape(len(tokens), -1)


def token_probes(flexlam: FlexLAM, rollouts: Mapping[str, np.ndarray], fixed: Mapping[str, FlexLAM] | None = None,
                 budgets: Sequence[int] | None = None, train_fraction: float = 0.7, seed: int = 0) -> dict[str, Any]:
    """Probe scores per budget: ``{"flexlam": {"action": {k: s}, "distractor": {k: s}}, "<fixed>": {... at its K}}``.

    The first ``train_fraction`` of the episodes train the probes (their last fifth early-stops them); the
    rest score them.
    """
    episodes = rollouts["episode"]
    ids = np.unique(episodes)
    cut = np.quantile(ids, train_fraction)
    train = episodes < cut
    valid = train & (episodes >= np.quantile(ids[ids < cut], 0.8))
    train &= ~valid
    if not (train.any() and valid.any()) or (train | valid).all():
        raise DataError(f"{len(ids)} probe episodes are too few to train, early-stop and score a probe on separate "
                        f"episodes; collect more (at least 3, dozens for a stable score).")
    action = rollouts["action"]
    discrete = np.issubdtype(action.dtype, np.integer)
    budgets = list(budgets or range(1, flexlam.num_tokens + 1))

    def scores(lam: FlexLAM, ks: Sequence[int]) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {"action": {}, "distractor": {}}
        tokens = lam.encode_many(rollouts["obs"], rollouts["next_obs"]).numpy()
        for k in ks:
            x = token_features(tokens, k, lam.codebook_size)
            out["action"][k] = fit_probe(x, action, train, discrete, seed, valid=valid)
            out["distractor"][k] = fit_probe(x, rollouts["distractor"], train, False, seed, valid=valid)
        return out

    result = {"flexlam": scores(flexlam, budgets), "transitions": len(episodes), "held_out": int((~(train | valid)).sum()),
              "action_metric": "accuracy" if discrete else "R^2"}
    for name, lam in (fixed or {}).items():
        result[name] = scores(lam, [lam.num_tokens])
    return result


def combine_probes(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Probe results of several seeds (one :func:`token_probes` result each) as one: each score the mean
    over seeds, with ``"sd"`` (same shape, the seeds' standard deviation) and ``"seeds"`` (their count)."""
    if not per_seed:
        raise DataError("No probe results to combine; probe at least one seed.")
    first = per_seed[0]
    models = [name for name, value in first.items() if isinstance(value, Mapping) and "action" in value]
    mean: dict[str, Any] = {key: value for key, value in first.items() if key not in models}
    sd: dict[str, Any] = {}
    for name in models:
        mean[name], sd[name] = {}, {}
        for target, scores in first[name].items():
            values = np.array([[result[name][target][k] for k in scores] for result in per_seed])
            mean[name][target] = dict(zip(scores, values.mean(0).tolist()))
            sd[name][target] = dict(zip(scores, values.std(0).tolist()))
    mean["transitions"] = [result["transitions"] for result in per_seed]
    mean["held_out"] = [result["held_out"] for result in per_seed]
    return {**mean, "sd": sd, "seeds": len(per_seed)}


def token_probe_figure(results: Mapping[str, Mapping[str, Any]], path: Any) -> Any:
    """One row per task: the action probe and the distractor probe against k, FlexLAM as a line, fixed LAMs as points
    (with the seeds' standard deviation as error bars when ``results`` come from :func:`combine_probes`)."""
    from ..media import pyplot

    plt = pyplot()

    from ..checkpoint import atomic_path

    fig, axes = plt.subplots(len(results), 2, figsize=(9, 3.2 * len(results)), squeeze=False)
    for row, (task, result) in enumerate(results.items()):
        for col, target in enumerate(("action", "distractor")):
            ax = axes[row][col]
            sd = result.get("sd", {})
            flex = result["flexlam"][target]
            ax.errorbar([int(k) for k in flex], list(flex.values()), yerr=list(sd["flexlam"][target].values()) if sd else None,
                        fmt="o-", capsize=3, label="FlexLAM, first k tokens")
            fixed = sorted((int(k), v, sd[name][target][k] if sd else 0.0) for name, r in result.items()
                           if name.startswith("fixed") for k, v in r[target].items())
            if fixed:
                ks, values, errors = zip(*fixed)
                ax.errorbar(ks, values, yerr=errors if sd else None, fmt="x", ms=9, mew=2, capsize=3, label="fixed LAM (K = k)")
            metric = result["action_metric"] if target == "action" else "R^2"
            seeds = f", mean of {result['seeds']} seeds" if "seeds" in result else ""
            ax.set_title(f"{task}: probe -> {'true action' if target == 'action' else 'distractor change'} ({metric}{seeds})",
                         fontsize=9)
            ax.set_xlabel("tokens k")
        axes[row][0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def run_token_probes(lam_dir: Any, tasks: Sequence[str], out: Any, fixed_dirs: Sequence[Any] = (), episodes: int = 40,
                     seed: int = 50_000, name: str = "token_probes") -> dict[str, Any]:
    """``flexlam-analyze token-probes`` as a library call: probe the LAM at ``lam_dir`` (and fixed LAMs) on
    fresh rollouts of each task; write ``<name>.json`` and ``<name>.png`` into ``out``."""
    from pathlib import Path

    from ..checkpoint import atomic_write_json

    lam = FlexLAM.load(lam_dir)
    fixed = {f"fixed K={m.num_tokens} ({Path(p).parent.name})": m for p in fixed_dirs for m in [FlexLAM.load(p)]}
    results = {task: token_probes(lam, probe_rollouts(task, lam, episodes, seed), fixed) for task in tasks}
    out = Path(out)
    atomic_write_json(out / f"{name}.json", {"lam": str(Path(lam_dir).resolve()), "episodes": episodes, "seed": seed,
                                            "tasks": results})
    token_probe_figure(results, out / f"{name}.png")
    return results
