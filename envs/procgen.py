"""Procgen (LAPO's benchmark) as a Gymnasium env: ``pip install "flexlam-rl[procgen]"``.

``procgen.ProcgenGym3Env`` is a gym3 vector env that resets itself: when an episode ends, the
observation it returns is already the next episode's first frame. :class:`ProcgenEnv` turns one such
env into a plain Gymnasium env: the step that ends an episode repeats the last frame as its final
observation (Procgen does not expose the true one, and a jump to a new level is no transition a LAM
should learn), and ``reset`` starts the level Procgen already drew, or a new env on ``reset(seed=...)``.
Every episode end is ``terminated`` (Procgen's own time limits included, as in its gym wrapper).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flexlam_rl.errors import FlexLAMError

GAMES = ("bigfish", "bossfight", "caveflyer", "chaser", "climber", "coinrun", "dodgeball", "fruitbot", "heist", "jumper",
         "leaper", "maze", "miner", "ninja", "plunder", "starpilot")
DISTRIBUTION_MODES = ("easy", "hard", "extreme", "memory", "exploration")
INSTALL_HINT = 'Procgen games need the procgen extra: pip install "flexlam-rl[procgen]"'
# What each of the 15 actions presses (Procgen's get_combos order); many games ignore some of them.
ACTION_MEANINGS = ("LEFT+DOWN", "LEFT", "LEFT+UP", "DOWN", "NOOP", "UP", "RIGHT+DOWN", "RIGHT", "RIGHT+UP",
                   "D", "A", "W", "S", "Q", "E")


def _gym3_env_class() -> Any:
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # procgen imports the old gym, which prints a banner
            from procgen import ProcgenGym3Env
    except ImportError:
        raise FlexLAMError(f"{INSTALL_HINT}.") from None
    return ProcgenGym3Env


class ProcgenEnv(gym.Env):
    """One Procgen game: 64x64 RGB uint8 frames, ``Discrete(15)`` actions.

    ``distribution_mode`` (easy, hard, ...), ``num_levels`` (0: unlimited) and ``start_level`` are Procgen's own
    options; ``reset(seed=s)`` makes the level sequence a function of ``s``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, game: str = "coinrun", distribution_mode: str = "easy", num_levels: int = 0, start_level: int = 0,
                 render_mode: str | None = None):
        if game not in GAMES:
            raise FlexLAMError(f"Unknown Procgen game {game!r}; expected one of {', '.join(GAMES)}.")
        if distribution_mode not in DISTRIBUTION_MODES:
            raise FlexLAMError(f"distribution_mode must be one of {DISTRIBUTION_MODES}, got {distribution_mode!r}.")
        for name, value in (("num_levels", num_levels), ("start_level", start_level)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise FlexLAMError(f"{name} must be a non-negative integer, got {value!r}.")
        if render_mode not in (None, "rgb_array"):
            raise FlexLAMError(f"ProcgenEnv renders rgb_array only, got render_mode={render_mode!r}.")
        self._make = _gym3_env_class()
        self.game, self.distribution_mode = game, distribution_mode
        self.num_levels, self.start_level = int(num_levels), int(start_level)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = spaces.Discrete(15)
        self._env: Any = None
        self._frame = np.zeros((64, 64, 3), np.uint8)
        self._next_first: np.ndarray | None = None  # the new episode Procgen started when the last one ended

    def _new_env(self, seed: int) -> None:
        kwargs = {"num_levels": self.num_levels, "start_level": self.start_level}
        if self.distribution_mode == "exploration":
            kwargs = {}
        self._env = self._make(num=1, env_name=self.game, distribution_mode=self.distribution_mode, rand_seed=int(seed),
                               num_threads=0, **kwargs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or self._env is None or self._next_first is None:
            self._new_env(int(self.np_random.integers(0, 2**31 - 1)))
            _, obs, _ = self._env.observe()
            self._frame = np.array(obs["rgb"][0], dtype=np.uint8)
        else:
            self._frame = self._next_first
        self._next_first = None
        return self._frame.copy(), {"level_seed": int(self._env.get_info()[0].get("level_seed", -1))}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._env is None:
            raise FlexLAMError("Call reset() before step().")
        if self._next_first is not None:
            raise FlexLAMError("The episode has ended; call reset() before step().")
        if not self.action_space.contains(np.int64(action) if np.ndim(action) == 0 else action):
            raise FlexLAMError(f"Action {action!r} is not in {self.action_space}.")
        self._env.act(np.array([int(action)], dtype=np.int32))
        reward, obs, first = self._env.observe()
        info = dict(self._env.get_info()[0])
        info.pop("rgb", None)
        frame = np.array(obs["rgb"][0], dtype=np.uint8)
        if bool(first[0]):  # the episode ended; Procgen has already drawn the next level
            self._next_first = frame
            return self._frame.copy(), float(reward[0]), True, False, {**info, "level_complete": bool(info.get("prev_level_complete"))}
        self._frame = frame
        return frame.copy(), float(reward[0]), False, False, info

    def render(self) -> np.ndarray | None:
        return self._frame.copy() if self.render_mode == "rgb_array" else None

    def get_action_meanings(self) -> list[str]:
        """What each action presses (ALE's convention), e.g. to label a confusion matrix."""
        return list(ACTION_MEANINGS)

    def close(self) -> None:
        self._env = None


def register_procgen() -> None:
    """``flexlam/Procgen-<game>-v0`` for every game (importing procgen waits until an env is made)."""
    for game in GAMES:
        env_id = f"flexlam/Procgen-{game}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="flexlam_rl.envs.procgen:ProcgenEnv", kwargs={"game": game})
