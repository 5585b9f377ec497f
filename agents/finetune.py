"""Online fine-tuning from a latent BC policy (LAPO's third stage) as an SB3 actor-critic policy.

The actor is the whole pipeline, made differentiable: frames (a stack) -> the latent BC policy's encoder and
token head -> its greedy tokens' codes (a straight-through gradient through the choice) -> the LAM's embedding,
null-filled past the budget k -> the translator (with o_t, the newest frame) -> logits over the env's real
actions. At the start it acts exactly as latent BC through the translator does (its greedy action is theirs);
PPO then trains the policy's encoder and head and the translator, with a new value head on the policy's features.
The LAM's embedding (its token projection, slot embeddings and null latent) stays frozen: the tokens keep the
meaning the translator was aligned to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from torch import nn

from flexlam_rl.act.latent_bc import LatentBCPolicy
from flexlam_rl.align import Translator
from flexlam_rl.checkpoint import origin, read_json
from flexlam_rl.errors import ConfigError
from flexlam_rl.model.lam import FlexLAM


def check_init_from(init_from: str | Path, lam: FlexLAM, translator_dir: str | Path) -> dict[str, Any]:
    """Refuse a latent BC folder that is missing, made for another LAM or another frame shape, in one line naming
    both sides, reading only configs (before any env is built; ``lam``: the LAM it is to act through); returns its
    config."""
    folder, lam_dir = Path(init_from), origin(lam)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"agent.init_from={folder}: no latent BC policy there (no config.json); point it at the folder "
                          f"flexlam-latent-bc wrote (its out=, default <lam_dir>/../latent_bc).")
    record = read_json(folder / "config.json", "latent BC config")
    config, extra = record.get("config", {}), record.get("extra", {}) or {}
    if list(config.get("obs_shape", [])) != list(lam.config.obs_shape):
        raise ConfigError(f"agent.init_from={folder} reads frames {config.get('obs_shape')}, but the LAM at {lam_dir} reads "
                          f"{lam.config.obs_shape}; fine-tune a policy cloned through this LAM.")
    fingerprint = extra.get("lam_fingerprint")
    if fingerprint != lam.fingerprint():
        raise ConfigError(f"agent.init_from={folder} was cloned through the LAM {extra.get('lam', '?')} (fingerprint {fingerprint}), "
                          f"not the LAM at {lam_dir} (fingerprint {lam.fingerprint()}); use the latent BC policy of this LAM "
                          f"or set agent.lam_dir to its LAM.")
    translator = read_json(Path(translator_dir) / "config.json", "translator config").get("config", {})
    if translator.get("action", {}).get("type") != "discrete":
        raise ConfigError(f"agent.init_from fine-tunes toward Discrete actions; the translator at {translator_dir} outputs "
                          f"{translator.get('action')}.")
    return config


class LatentBCActorCritic(ActorCriticPolicy):
    """An SB3 ``ActorCriticPolicy`` whose actor is latent BC + LAM embedding + translator (see the module docstring).

    Observations arrive as SB3 gives them to a CNN (channel-first frame stacks); ``init_from``, ``lam_dir``,
    ``translator_dir`` and ``prefix_len`` are paths and a budget, so ``model.zip`` records how to rebuild it.
    """

    def __init__(self, observation_space: gym.spaces.Space, action_space: gym.spaces.Space, lr_schedule: Any,
                 init_from: str = "", lam_dir: str = "", translator_dir: str = "", prefix_len: int = 1, **kwargs: Any):
        self.init_from, self.lam_dir, self.translator_dir, self.prefix_len = init_from, lam_dir, translator_dir, int(prefix_len)
        kwargs.setdefault("features_extractor_class", FlattenExtractor)  # unused: the latent BC encoder reads the frames
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        self.bc = LatentBCPolicy.load(self.init_from)
        lam = FlexLAM.load(self.lam_dir)
        self.embedding = _FrozenEmbedding(lam)
        self.translator = Translator.load(self.translator_dir)
        self.frame_channels = int(self.bc.config.obs_shape[-1])
        self.value_net = nn.Linear(self.bc.config.hidden_dim, 1)
        self.action_dist = CategoricalDistribution(int(self.action_space.n))
        trainable = [p for p in self.parameters() if p.requires_grad]
        self.optimizer = self.optimizer_class(trainable, lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(init_from=self.init_from, lam_dir=self.lam_dir, translator_dir=self.translator_dir, prefix_len=self.prefix_len)
        return data

    def _heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Channel-first stacks ``[B, n * C, H, W]`` -> (action logits ``[B, n]``, values ``[B, 1]``)."""
        frames = obs.permute(0, 2, 3, 1)  # back to the env's layout: the models read [B, H, W, C]
        features = self.bc.features(frames)
        latent = self.embedding(self.bc.codes(features), self.prefix_len)
        newest = frames[..., -self.frame_channels :]
        logits = self.translator(latent, newest)
        return logits, self.value_net(features)

    def forward(self, obs: torch.Tensor, deterministic: bool = False):
        logits, values = self._heads(obs)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        actions = distribution.get_actions(deterministic=deterministic)
        return actions, values, distribution.log_prob(actions)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor):
        logits, values = self._heads(obs)
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: torch.Tensor):
        return self.action_dist.proba_distribution(action_logits=self._heads(obs)[0])

    def predict_values(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value_net(self.bc.features(obs.permute(0, 2, 3, 1)))

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)


class _FrozenEmbedding(nn.Module):
    """The LAM's code -> latent map (token projection, slot embeddings, null latent), frozen."""

    def __init__(self, lam: FlexLAM):
        super().__init__()
        self.token_proj = lam.token_proj
        self.register_buffer("slot_embed", lam.slot_embed.detach().clone())
        self.register_buffer("null_latent", lam.null_latent.detach().clone())
        for parameter in self.token_proj.parameters():
            parameter.requires_grad_(False)

    def forward(self, codes: torch.Tensor, prefix_len: int) -> torch.Tensor:
        from flexlam_rl.model.lam import null_fill

        return null_fill(self.token_proj(codes) + self.slot_embed, prefix_len, self.null_latent)
