"""Stable-Baselines3 agents acting in latent-action space (installed as ``flexlam_rl.agents``)."""

from .vec_env import LatentActionVecEnv, VecTokenCost

__all__ = ["LatentActionVecEnv", "VecTokenCost"]
