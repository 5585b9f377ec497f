"""Feature extractors for SB3 policies on small frames."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from flexlam_rl.model.nets import ConvEncoder

SMALL_CNN_CHANNELS = (32, 64, 64)
NATURE_CNN_MIN_SIZE = 36  # SB3's NatureCNN needs frames of at least 36 px


class SmallCNN(BaseFeaturesExtractor):
    """flexlam-rl's :class:`~flexlam_rl.model.nets.ConvEncoder` as an SB3 feature extractor, for frames NatureCNN rejects;
    with ``channels=(16, 32, 64)`` it is a latent BC policy's encoder (an agent from scratch with the same network
    as one fine-tuned from latent BC)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256, channels: tuple[int, ...] = SMALL_CNN_CHANNELS):
        super().__init__(observation_space, features_dim)
        self.encoder = ConvEncoder(observation_space.shape[0], tuple(channels), features_dim)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.encoder(observations)


def policy_for(observation_space: gym.Space) -> tuple[str, dict[str, Any]]:
    """SB3 policy name and policy_kwargs for an (already channel-first) observation space."""
    if not is_image_space(observation_space):
        return "MlpPolicy", {}
    if min(observation_space.shape[1:]) < NATURE_CNN_MIN_SIZE:
        return "CnnPolicy", {"features_extractor_class": SmallCNN}
    return "CnnPolicy", {}
