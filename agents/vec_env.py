"""The SB3 ``VecEnv`` form of the latent-action wrapper (Stable-Baselines3 lives in ``agents/``, not in ``wrappers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from flexlam_rl.act.wrappers import LatentTranslation, check_token_cost, tokens_used
from flexlam_rl.align import Translator
from flexlam_rl.errors import FlexLAMError
from flexlam_rl.model.lam import FlexLAM


class LatentActionVecEnv(VecEnvWrapper):
    """All sub-envs' tokens ``[n_envs, k]`` go through the translator in one batch.

    ``prefix_len="adaptive"``: each action is K tokens plus a length choice (see
    :class:`~flexlam_rl.act.wrappers.AdaptiveLatentActionWrapper`); ``infos[i]["prefix_len"]`` says how many
    tokens each sub-env used, and :class:`VecTokenCost` puts a price on them.

    The sub-envs must already give the LAM's observations (build them from the task, or with
    :func:`flexlam_rl.act.wrappers.match_lam_observations`).
    """

    def __init__(self, venv: VecEnv, lam: FlexLAM | str | Path, translator: Translator | str | Path,
                 prefix_len: int | str, device: str = "cpu", memoize: bool = True):
        self.translation = LatentTranslation(lam, translator, prefix_len, device, memoize)
        expected = self.translation.lam.config.obs_shape
        if getattr(venv.observation_space, "shape", None) != tuple(expected):
            raise FlexLAMError(
                f"Sub-env observations {venv.observation_space} do not match the LAM's {expected}; "
                f"build the sub-envs with flexlam_rl.act.wrappers.match_lam_observations (or the task's pixel env)."
            )
        self.translation.check_env_action_space(venv.action_space)
        super().__init__(venv, action_space=self.translation.action_space())
        self._last_obs: np.ndarray | None = None
        self._tokens: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        self._last_obs = obs
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._tokens = self.translation.validate(actions, self.num_envs)
        self.venv.step_async(self.translation(self._tokens, self._last_obs))

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        self._last_obs = obs
        for info, length in zip(infos, self.translation.lengths(self._tokens)):
            info["prefix_len"] = int(length)
        return obs, rewards, dones, infos


class VecTokenCost(VecEnvWrapper):
    """The SB3 form of :class:`~flexlam_rl.act.wrappers.TokenCost`: ``token_cost * infos[i]["prefix_len"]`` off
    each sub-env's reward."""

    def __init__(self, venv: VecEnv, token_cost: float):
        self.token_cost = check_token_cost(token_cost)
        super().__init__(venv)

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        lengths = np.array([tokens_used(info) for info in infos], dtype=rewards.dtype)
        return obs, rewards - self.token_cost * lengths, dones, infos
