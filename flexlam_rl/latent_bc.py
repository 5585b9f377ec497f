"""Latent behaviour cloning ("latent-token evaluator"): o_t -> the tokens the IDM assigns.

Trained on action-free expert data: the targets are ``lam.encode(o_t, o_t+1)``, never the
actions. At budget k the policy's first k tokens go through the LAM's null-filled prefix
and the translator (via :class:`~flexlam_rl.wrappers.LatentActionWrapper`), and the
policy is scored by its mean episode return in the env. One policy predicts all K slots,
so a FlexLAM is evaluated at every budget with the same policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from .align import Translator
from .budgets import check_prefix_len
from .config import check_int, check_optional_positive_int, parse_config
from .data import TransitionSet, eval_batches
from .errors import ConfigError, DataError
from .fit import FitConfig, fit, seeded
from .metrics import standard_error
from .model import FlexLAM
from .nets import ObservationInput, feature_encoder


@dataclass
class LatentBCConfig:
    obs_shape: list[int]
    num_tokens: int
    codebook_size: int
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    hidden_dim: int = 256
    adaptive: bool = False  # also predict each step's length (targets cut to adaptive_prefix_len)

    def __post_init__(self) -> None:
        if not isinstance(self.obs_shape, list) or len(self.obs_shape) not in (1, 3):
            raise ConfigError(f"obs_shape must be [H, W, C] or [D], got {self.obs_shape!r}.")
        for s in self.obs_shape:
            check_int("obs_shape entry", s, 1, 4096)
        check_int("num_tokens", self.num_tokens, 1, 64)
        check_int("codebook_size", self.codebook_size, 2, 65536)
        check_int("hidden_dim", self.hidden_dim, 1, 16384)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatentBCConfig:
        return parse_config(cls, data, "latent BC config")


class LatentBCPolicy(ObservationInput):
    """``obs [B, ...] -> logits [B, K, V]`` over the LAM's tokens, one head per slot."""

    def __init__(self, config: LatentBCConfig):
        super().__init__()
        self.config = config
        self.encoder = feature_encoder(config.obs_shape, config.channels, config.hidden_dim)
        self.head = torch.nn.Linear(config.hidden_dim, config.num_tokens * config.codebook_size)
        self.length_head = torch.nn.Linear(config.hidden_dim, config.num_tokens) if config.adaptive else None
        self._init_obs_input(config.obs_shape)

    def forward(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Token logits ``[B, K, V]``."""
        return self.logits(obs)[0]

    def logits(self, obs: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Token logits ``[B, K, V]`` and, for an adaptive policy, length logits ``[B, K]`` (class c: length c + 1)."""
        h = self.encoder(self.obs_input(obs))
        tokens = self.head(h).view(-1, self.config.num_tokens, self.config.codebook_size)
        return tokens, (self.length_head(h) if self.length_head is not None else None)

    @torch.no_grad()
    def act(self, obs: np.ndarray, prefix_len: int) -> np.ndarray:
        """Greedy tokens ``[B, k]`` for budget k (the first k slots)."""
        k = check_prefix_len(prefix_len, self.config.num_tokens)
        return self(obs)[:, :k].argmax(-1).cpu().numpy()

    @torch.no_grad()
    def act_adaptive(self, obs: np.ndarray) -> np.ndarray:
        """Greedy ``[B, K + 1]``: K tokens, then the length choice (an
        :class:`~flexlam_rl.wrappers.AdaptiveLatentActionWrapper` action)."""
        logits, length = self.logits(obs)
        if length is None:
            raise ConfigError("This latent BC policy was trained for fixed budgets; train one with an adaptive tol to act adaptively.")
        return torch.cat([logits.argmax(-1), length.argmax(-1, keepdim=True)], dim=1).cpu().numpy()

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        from .checkpoint import save_module

        return save_module(self, path, kind="latent_bc", config=asdict(self.config), extra=extra)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> LatentBCPolicy:
        from .checkpoint import load_module

        return load_module(path, kind="latent_bc", build=lambda c: cls(LatentBCConfig.from_dict(c)), device=device)


@dataclass
class LatentBCTrainConfig(FitConfig):
    """Latent BC training (the Hydra ``bc`` group)."""

    steps: int = 1500
    batch_size: int = 64


@torch.no_grad()
def token_targets(lam: FlexLAM, data: TransitionSet, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """All transitions' o_t and the IDM's tokens for them: ``([N, ...], [N, K])``."""
    batch = data.__getitems__(np.arange(len(data)))
    return batch["obs"], lam.encode_many(batch["obs"], batch["next_obs"], batch_size).numpy()


@torch.no_grad()
def adaptive_targets(lam: FlexLAM, data: TransitionSet, tol: float, batch_size: int = 256) -> np.ndarray:
    """Each transition's adaptive length (:meth:`~flexlam_rl.model.FlexLAM.adaptive_prefix_len`): ``[N]`` in 1..K."""
    return np.concatenate([lam.adaptive_prefix_len(batch["obs"], batch["next_obs"], tol).cpu().numpy()
                           for batch in eval_batches(data, batch_size)])


def train_latent_bc(lam: FlexLAM, expert: TransitionSet, cfg: LatentBCTrainConfig, tol: float | None = None) -> LatentBCPolicy:
    """Clone the IDM's tokens on action-free expert transitions (actions are never read).

    ``tol``: an adaptive policy instead. Its targets are the tokens cut to each transition's
    adaptive length (slots past it carry no loss) plus that length, a K-way head.
    """
    if len(expert) == 0:
        raise DataError("No expert transitions to clone; collect an expert dataset first (flexlam-collect behaviour=expert).")
    obs, tokens = token_targets(lam, expert)
    lengths = torch.as_tensor(adaptive_targets(lam, expert, tol)) if tol is not None else None
    with seeded(cfg.seed):
        policy = LatentBCPolicy(LatentBCConfig(list(lam.config.obs_shape), lam.num_tokens, lam.codebook_size,
                                               list(lam.config.channels), lam.config.hidden_dim, adaptive=tol is not None))
    policy.copy_obs_stats(lam)
    targets = torch.as_tensor(tokens)
    slots = torch.arange(lam.num_tokens)

    def batch_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        logits, length_logits = policy.logits(obs[idx.numpy()])
        per_slot = F.cross_entropy(logits.reshape(-1, lam.codebook_size), targets[idx].reshape(-1), reduction="none")
        if lengths is None:
            return per_slot.mean()
        keep = (slots[None, :] < lengths[idx][:, None]).reshape(-1).float()  # only the slots the length keeps
        return (per_slot * keep).sum() / keep.sum() + F.cross_entropy(length_logits, lengths[idx] - 1)

    return fit(policy, batch_loss, len(obs), cfg)


# ----------------------------------------------------------------------- scoring
def rollout_returns(env: gym.Env, act: Callable[[np.ndarray], Any], episodes: int, seed: int,
                    frames: list[np.ndarray] | None = None) -> list[float]:
    """Undiscounted returns of ``act`` over ``episodes`` episodes (reset seeds ``seed + i``).

    Every method sees the same episodes (same start states), which is what pairs their scores;
    SB3's ``evaluate_policy`` seeds a vector env once and cannot promise that. When ``frames``
    is given, the observations of the first episode are appended to it.
    """
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        record = frames is not None and i == 0
        if record:
            frames.append(np.asarray(obs))
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
            if record:
                frames.append(np.asarray(obs))
        returns.append(total)
    return returns


def latent_env(env: str | gym.Env, lam: FlexLAM, translator: Translator, prefix_len: int,
               translations: dict[int, Any] | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """A task or Gymnasium id, seen as ``lam`` sees it, acting through ``lam`` + ``translator`` at budget k.

    ``env`` may also be an env :func:`~flexlam_rl.wrappers.lam_env` made (then ``max_episode_steps`` is its own):
    several budgets can share it, and its construction (a ROM load on Atari) is paid once.
    ``translations`` (budget -> :class:`~flexlam_rl.wrappers.LatentTranslation`, filled here) lets the envs of
    several tasks share one translation and its memo per budget; the caller keeps one dict per (LAM, translator).
    """
    from .wrappers import LatentActionWrapper, LatentTranslation, lam_env

    raw = env if isinstance(env, gym.Env) else lam_env(env, lam, max_episode_steps=max_episode_steps)
    if translations is None:
        return LatentActionWrapper(raw, lam, translator, prefix_len)
    if prefix_len not in translations:
        translations[prefix_len] = LatentTranslation(lam, translator, prefix_len)
    return LatentActionWrapper.sharing(raw, translations[prefix_len])


def evaluate_latent_bc(
    policy: LatentBCPolicy, lam: FlexLAM, translator: Translator, env: str, budgets: Sequence[int],
    episodes: int, seed: int, *, gif_frames: dict[int, list[np.ndarray]] | None = None,
    translations: dict[int, Any] | None = None, max_episode_steps: int | None = None,
) -> dict[int, dict[str, float]]:
    """Mean and standard error of the return at each budget on task ``env`` (episode i resets with ``seed + i``).

    With ``gif_frames``, each budget's first episode is recorded into ``gif_frames[k]``; ``translations``: see
    :func:`latent_env` (evaluating one translator on several tasks); ``max_episode_steps``: None keeps the task's.
    """
    from .wrappers import lam_env

    budgets = [check_prefix_len(k, policy.config.num_tokens) for k in budgets]
    out = {}
    # one env for every budget: each episode resets it with its own seed, so budgets still see the same episodes
    with lam_env(env, lam, max_episode_steps=max_episode_steps) as raw:
        for k in budgets:
            frames = None if gif_frames is None else gif_frames.setdefault(k, [])
            wrapped = latent_env(raw, lam, translator, k, translations)  # not closed: that would close ``raw``
            returns = rollout_returns(wrapped, lambda o, k=k: policy.act(np.asarray(o)[None], k)[0], episodes, seed, frames)
            out[k] = {"mean": float(np.mean(returns)), "stderr": standard_error(returns)}
    return out


def evaluate_adaptive_latent_bc(policy: LatentBCPolicy, lam: FlexLAM, translator: Translator, env: str, episodes: int,
                                seed: int, max_episode_steps: int | None = None) -> dict[str, float]:
    """Mean and standard error of the return of an adaptive policy, and the tokens it used per step."""
    from .wrappers import AdaptiveLatentActionWrapper, lam_env

    used: list[int] = []

    def act(obs: np.ndarray) -> np.ndarray:
        action = policy.act_adaptive(np.asarray(obs)[None])[0]
        used.append(int(action[-1]) + 1)
        return action

    with AdaptiveLatentActionWrapper(lam_env(env, lam, max_episode_steps=max_episode_steps), lam, translator) as wrapped:
        returns = rollout_returns(wrapped, act, episodes, seed)
    return {"mean": float(np.mean(returns)), "stderr": standard_error(returns),
            "mean_tokens": float(np.mean(used))}


def random_returns(env: str, episodes: int, seed: int, frame_size: int | None = None,
                   max_episode_steps: int | None = None) -> list[float]:
    """Returns of uniformly random real actions: the floor latent BC is compared with (under the same step cap)."""
    from .envs import task_at_frame_size

    with task_at_frame_size(env, frame_size).make(max_episode_steps) as raw:
        raw.action_space.seed(seed)
        return rollout_returns(raw, lambda obs: raw.action_space.sample(), episodes, seed)


def run_latent_bc(
    lam_dir: str | Path, env: str, expert_datasets: Sequence[str], train_cfg: LatentBCTrainConfig, *,
    translator_dir: str | Path | None = None, budgets: Sequence[int] | None = None, episodes: int = 20, seed: int = 10_000,
    out: str | Path | None = None, gif: bool = True, adaptive_tol: float | None = None, max_episode_steps: int | None = None,
) -> dict[str, Any]:
    """``flexlam-latent-bc`` as a library call: clone on ``expert_datasets`` (actions never read), score
    every budget on ``env`` against a random policy, save the policy (default ``<lam_dir>/../latent_bc``),
    a GIF at the best budget and ``latent_bc_metrics.json``; returns those metrics. ``adaptive_tol``: also
    train and score an adaptive-length policy (:func:`train_latent_bc` with ``tol``), saved to ``<out>_adaptive``.
    ``max_episode_steps`` caps every scored episode (the policy's, the random floor's, the GIF's): None keeps the
    task's own limit (thousands of steps on the Atari tasks, where a policy that never loses plays them all)."""
    from .checkpoint import atomic_write_json
    from .data import load_transitions
    from .media import write_gif

    check_optional_positive_int("max_episode_steps", max_episode_steps, "the task's own limit")  # before anything loads
    lam_dir = Path(lam_dir)
    lam = FlexLAM.load(lam_dir)
    translator = Translator.load(Path(translator_dir) if translator_dir else lam_dir.parent / "translator")
    expert = load_transitions(list(expert_datasets), 0.0, 0).train
    for source in expert.sources:  # everything is checked before anything trains
        if tuple(source.obs_shape) != tuple(lam.config.obs_shape):
            raise DataError(f"Expert dataset {source.describe()} does not fit the LAM at {lam_dir}, which reads observations "
                            f"{lam.config.obs_shape} (preprocessing {lam.config.preprocess}); collect expert data with the "
                            f"LAM's preprocessing.")
    latent_env(env, lam, translator, 1).close()  # the env must fit the LAM's observations and the translator's actions
    policy = train_latent_bc(lam, expert, train_cfg)
    budgets = list(budgets) if budgets else list(range(1, lam.num_tokens + 1))
    by_budget = evaluate_latent_bc(policy, lam, translator, env, budgets, episodes, seed, max_episode_steps=max_episode_steps)
    rand = random_returns(env, episodes, seed, max_episode_steps=max_episode_steps)
    out = Path(out) if out else lam_dir.parent / "latent_bc"
    policy.save(out, extra={"lam": str(lam_dir.resolve()), "expert_datasets": list(expert_datasets),
                            "train": asdict(train_cfg), "returns": by_budget})
    best = max(by_budget, key=lambda k: by_budget[k]["mean"])
    gif_path = None
    if gif:
        frames: dict[int, list[np.ndarray]] = {}
        evaluate_latent_bc(policy, lam, translator, env, [best], 1, seed, gif_frames=frames, max_episode_steps=max_episode_steps)
        gif_path = write_gif(frames[best], out.parent / f"latent_bc_k{best}.gif")
    metrics = {"returns": by_budget, "random": {"mean": float(np.mean(rand)), "stderr": standard_error(rand)},
               "env": env, "episodes": episodes, "max_episode_steps": max_episode_steps, "expert_transitions": len(expert),
               "best_budget": best,
               "policy": str(out.resolve()), "gif": str(gif_path) if gif_path else None}
    if adaptive_tol is not None:
        adaptive = train_latent_bc(lam, expert, train_cfg, tol=adaptive_tol)
        metrics["adaptive"] = {"tol": adaptive_tol, **evaluate_adaptive_latent_bc(adaptive, lam, translator, env, episodes, seed,
                                                                                      max_episode_steps)}
        adaptive.save(out.parent / f"{out.name}_adaptive", extra={"lam": str(lam_dir.resolve()), "tol": adaptive_tol,
                                                                  "returns": metrics["adaptive"]})
    atomic_write_json(out.parent / "latent_bc_metrics.json", metrics)
    return metrics
