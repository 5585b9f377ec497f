"""Feature extractors for SB3 policies on small frames."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class SmallCNN(BaseFeaturesExtractor):
    """A CNN for frames smaller than SB3's NatureCNN accepts (it needs >= 36 px)."""

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 256):
        super().__init__(observation_space, features_dim)
        channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )
        self.linear = nn.Sequential(nn.Linear(64 * 16, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


def policy_for(observation_space: gym.Space) -> tuple[str, dict[str, Any]]:
    """SB3 policy name and policy_kwargs for an (already channel-first) observation space."""
    if not is_image_space(observation_space):
        return "MlpPolicy", {}
    if min(observation_space.shape[1:]) < 36:
        return "CnnPolicy", {"features_extractor_class": SmallCNN}
    return "CnnPolicy", {}
