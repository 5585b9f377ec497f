"""PointReach: continuous control whose action is visible in the next frame.

A point moves in the unit square by ``0.08 * action`` (action in [-1, 1]^2, first-order: no
hidden velocity) and must reach a goal. Reaching it ends the episode with reward
``1 - 0.9 * steps / max_steps`` (as MiniGrid pays), 0 otherwise; 50 steps at most. Returns
therefore rank behaviours: expert about 0.9, random mostly 0. Pixel Pendulum is a poor LAM benchmark at its default
dt = 0.05: a full torque moves the next frame's angle by about 0.015 rad (well under a pixel)
and the velocity is invisible in one frame, so two frames cannot identify the action.
Here they can, up to pixel resolution, and finer latent codes mean finer motion.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from flexlam_rl.errors import FlexLAMError

STEP = 0.08
GOAL_RADIUS = 0.07
_BACKGROUND = np.array([40, 40, 48], np.uint8)
_AGENT = np.array([230, 60, 60], np.uint8)
_GOAL = np.array([60, 210, 90], np.uint8)


class PointReachEnv(gym.Env):
    """Observations: ``[x, y, goal_x, goal_y]`` in [0, 1]; ``render()`` draws the arena."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, render_size: int = 64, max_steps: int = 50):
        if render_mode not in (None, "rgb_array"):
            raise FlexLAMError(f"PointReach renders only 'rgb_array', got render_mode={render_mode!r}.")
        self.render_mode = render_mode
        self.render_size = int(render_size)
        self.max_steps = max_steps
        self.observation_space = spaces.Box(0.0, 1.0, (4,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._pos = np.zeros(2)
        self._goal = np.zeros(2)
        self._steps = 0
        yy, xx = np.mgrid[0 : self.render_size, 0 : self.render_size]
        self._grid = (np.stack([xx, yy], -1) + 0.5) / self.render_size

    def _obs(self) -> np.ndarray:
        return np.concatenate([self._pos, self._goal]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._pos = self.np_random.uniform(0.1, 0.9, 2)
        self._goal = self.np_random.uniform(0.1, 0.9, 2)
        while np.linalg.norm(self._goal - self._pos) < 0.3:
            self._goal = self.np_random.uniform(0.1, 0.9, 2)
        self._steps = 0
        return self._obs(), {}

    def step(self, action: Any):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._pos = np.clip(self._pos + STEP * a, 0.0, 1.0)
        self._steps += 1
        reached = bool(np.linalg.norm(self._goal - self._pos) < GOAL_RADIUS)
        truncated = self._steps >= self.max_steps and not reached
        reward = 1.0 - 0.9 * self._steps / self.max_steps if reached else 0.0
        return self._obs(), float(reward), reached, bool(truncated), {}

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        frame = np.broadcast_to(_BACKGROUND, self._grid.shape[:2] + (3,)).copy()
        frame[np.abs(self._grid - self._goal).max(-1) < GOAL_RADIUS] = _GOAL
        frame[np.linalg.norm(self._grid - self._pos, axis=-1) < 0.05] = _AGENT
        return frame


def point_reach_expert(env: gym.Env) -> np.ndarray:
    """Head straight for the goal at full speed (slowing down for the last step)."""
    base = env.unwrapped
    return np.clip((base._goal - base._pos) / STEP, -1.0, 1.0).astype(np.float32)
