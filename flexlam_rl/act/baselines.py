"""What a return means: random actions, the scripted expert and behaviour cloning on the expert data's *true*
actions, scored on the same env (settings, step cap, episode seeds) as the policy they are read against.

True-action BC is latent BC's ceiling: the same network, the same frames and the same expert episodes, but
trained on the actions latent BC never reads. The normalized score ``(R - R_random) / (R_expert - R_random)``
puts any return on one scale: 0 plays like random actions, 1 like the expert. A task without a scripted expert
has no normalized score ("no expert"), never a NaN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..align.actions import action_loss, action_spec, output_to_action
from ..data.transitions import TransitionSet
from ..envs import get_task, make_behaviour
from ..envs.pixels import stack_frames
from ..fit import Validation, chunked_mean, fit, seeded
from ..metrics import standard_error
from ..model.nets import ObservationInput, feature_encoder
from .latent_bc import LatentBCTrainConfig, expert_split, plateau_stop, rollout_returns, stacked_shape

NO_EXPERT = "no expert"


@dataclass
class ActionBCConfig:
    """A policy from (stacked) observations straight to the env's actions."""

    obs_shape: list[int]  # one observation
    action: dict[str, Any]  # the action spec (flexlam_rl.align.actions.action_spec)
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    hidden_dim: int = 256
    frame_stack: int = 1

    @property
    def input_shape(self) -> list[int]:
        return stacked_shape(self.obs_shape, self.frame_stack)


class ActionBCPolicy(ObservationInput):
    """``obs [B, *input_shape]`` -> logits ``[B, n]`` (Discrete) or actions in [-1, 1] ``[B, A]`` (Box)."""

    def __init__(self, config: ActionBCConfig):
        super().__init__()
        self.config = config
        out = config.action["n"] if config.action["type"] == "discrete" else config.action["shape"][0]
        self.encoder = feature_encoder(config.input_shape, config.channels, config.hidden_dim)
        self.head = torch.nn.Linear(config.hidden_dim, out)
        self._init_obs_input(config.input_shape)

    def forward(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        out = self.head(self.encoder(self.obs_input(obs)))
        return out if self.config.action["type"] == "discrete" else torch.tanh(out)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Greedy env actions ``[B]`` (Discrete) or ``[B, A]`` (Box)."""
        return output_to_action(self.config.action, self(obs))


def train_action_bc(expert: TransitionSet, action_space: gym.Space, cfg: LatentBCTrainConfig, channels: list[int],
                    hidden_dim: int, record: dict[str, Any] | None = None) -> ActionBCPolicy:
    """Clone the expert's true actions with latent BC's network, frames, episodes and stop rule."""
    stack = cfg.policy_stack(expert.obs_shape)
    train, validation = expert_split(expert, cfg)
    with seeded(cfg.seed):
        policy = ActionBCPolicy(ActionBCConfig(list(expert.obs_shape), action_spec(action_space), list(channels), hidden_dim, stack))
    if len(expert.obs_shape) == 1:
        obs_all = train.__getitems__(np.arange(len(train)))["obs"].astype(np.float64)
        policy.set_obs_stats(obs_all.mean(0), obs_all.std(0) + 1e-6)
    spec = policy.config.action
    obs, actions = train.stacked_obs(np.arange(len(train)), stack), torch.as_tensor(train.actions(np.arange(len(train))))

    def batch_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return action_loss(spec, policy(obs[idx.numpy()]), actions[idx])

    check = None
    if validation is not None:
        val_obs = validation.stacked_obs(np.arange(len(validation)), stack)
        val_actions = torch.as_tensor(validation.actions(np.arange(len(validation))))

        def validation_loss() -> float:
            return chunked_mean(lambda rows: action_loss(spec, policy(val_obs[rows]), val_actions[rows]), len(val_obs))

        check = Validation(validation_loss, cfg.check_every, plateau_stop(cfg))
    return fit(policy, batch_loss, len(obs), cfg, check, record=record)


def normalized_score(ret: float, random: float, expert: float | None) -> float | None:
    """``(R - R_random) / (R_expert - R_random)``; None without an expert, or where the expert is no better than random."""
    if expert is None or not expert > random:
        return None
    return float((ret - random) / (expert - random))


@dataclass
class Baselines:
    """Mean returns of the reference policies on one task under one env setting (``expert`` and
    ``true_action_bc`` None where there is no scripted expert or no actions in the expert data)."""

    task: str
    episodes: int
    max_episode_steps: int | None
    random: float
    expert: float | None
    true_action_bc: float | None
    stderr: dict[str, float] = field(default_factory=dict)

    def normalized(self, ret: float) -> float | None:
        return normalized_score(ret, self.random, self.expert)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["normalized_true_action_bc"] = None if self.true_action_bc is None else self.normalized(self.true_action_bc)
        out["expert_note"] = None if self.expert is not None else NO_EXPERT
        return out


def baseline_returns(env: gym.Env, task: str, episodes: int, seed: int, expert: TransitionSet | None = None,
                     bc: tuple[LatentBCTrainConfig, list[int], int] | None = None,
                     max_episode_steps: int | None = None) -> Baselines:
    """Random actions, the task's scripted expert and (with ``expert`` data that has actions and ``bc`` = (train
    settings, conv channels, hidden width)) true-action BC, each over the same ``episodes`` (reset seeds
    ``seed + i``) of ``env``, the env the policy being judged acts in (a LAM's frames, real actions)."""
    returns: dict[str, list[float] | None] = {}
    env.action_space.seed(seed)
    returns["random"] = rollout_returns(env, lambda obs: env.action_space.sample(), episodes, seed)
    expert_name = get_task(task).expert
    returns["expert"] = None
    if expert_name is not None:
        policy = make_behaviour("expert", env.action_space, expert_name, seed)
        returns["expert"] = rollout_returns(env, lambda obs: policy(env), episodes, seed)
    returns["true_action_bc"] = None
    if expert is not None and bc is not None and expert.has_actions:
        cfg, channels, hidden = bc
        clone = train_action_bc(expert, env.action_space, cfg, channels, hidden)
        stacked = stack_frames(env, clone.config.frame_stack)  # not closed: that would close ``env``
        returns["true_action_bc"] = rollout_returns(stacked, lambda obs: _one(clone.act(np.asarray(obs)[None])), episodes, seed)
    means = {name: (float(np.mean(r)) if r is not None else None) for name, r in returns.items()}
    return Baselines(task, episodes, max_episode_steps, means["random"], means["expert"], means["true_action_bc"],
                     {name: standard_error(r) for name, r in returns.items() if r is not None})


def _one(actions: np.ndarray) -> Any:
    return int(actions[0]) if actions.ndim == 1 else actions[0]
