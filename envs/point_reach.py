"""PointReach: continuous control whose action is visible in the next frame.

A point moves in the unit square by ``0.08 * action`` (action in [-1, 1]^2, first-order: no
hidden velocity) and must reach a goal. Reaching it ends the episode with reward
``1 - 0.9 * steps / max_steps`` (as MiniGrid pays), 0 otherwise; 50 steps at most. Returns
therefore rank behaviours: expert about 0.9, random mostly 0. Pixel Pendulum is a poor LAM benchmark at its default
dt = 0.05: a full torque moves the next frame's angle by about 0.015 rad (well under a pixel)
and the velocity is invisible in one frame, so two frames cannot identify the action.
Here they can, up to pixel resolution, and finer latent codes mean finer motion.

Action-independent variation (``distractors=n``, ``flicker=f``): n blue dots the agent does not
control, each on its own random walk (steps of ``DISTRACTOR_STEP`` per axis, reflected at the walls),
and a background whose brightness is scaled by ``1 + f * u`` with u uniform in [-1, 1], redrawn
every step. Both change the next frame whatever the action; ``info["distractors"]`` (``[n, 2]``)
and ``info["flicker"]`` give their state. The vector observation and the reward ignore them.
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
_DISTRACTOR = np.array([70, 120, 240], np.uint8)
DISTRACTOR_STEP = 0.06


class PointReachEnv(gym.Env):
    """Observations: ``[x, y, goal_x, goal_y]`` in [0, 1]; ``render()`` draws the arena."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode: str | None = None, render_size: int = 64, max_steps: int = 50, distractors: int = 0,
                 flicker: float = 0.0):
        if render_mode not in (None, "rgb_array"):
            raise FlexLAMError(f"PointReach renders only 'rgb_array', got render_mode={render_mode!r}.")
        if isinstance(distractors, bool) or not isinstance(distractors, int) or not 0 <= distractors <= 16:
            raise FlexLAMError(f"distractors must be an integer in 0..16, got {distractors!r}.")
        if not isinstance(flicker, (int, float)) or not 0.0 <= flicker < 1.0:
            raise FlexLAMError(f"flicker must be a number in [0, 1), got {flicker!r}.")
        self.num_distractors, self.flicker = distractors, float(flicker)
        self._distractors = np.zeros((distractors, 2))
        self._brightness = 1.0
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
        self._distractors = self.np_random.uniform(0.1, 0.9, (self.num_distractors, 2))
        self._brightness = self._draw_brightness()
        return self._obs(), self._info()

    def _draw_brightness(self) -> float:
        return 1.0 + self.flicker * float(self.np_random.uniform(-1.0, 1.0)) if self.flicker else 1.0

    def _info(self) -> dict[str, Any]:
        if not self.num_distractors and not self.flicker:
            return {}
        return {"distractors": self._distractors.astype(np.float32).copy(), "flicker": np.float32(self._brightness)}

    def _move_distractors(self) -> None:
        walk = self._distractors + self.np_random.uniform(-DISTRACTOR_STEP, DISTRACTOR_STEP, self._distractors.shape)
        self._distractors = np.abs(walk) - 2 * np.maximum(np.abs(walk) - 1.0, 0.0)  # reflect into [0, 1]

    def step(self, action: Any):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._pos = np.clip(self._pos + STEP * a, 0.0, 1.0)
        self._steps += 1
        reached = bool(np.linalg.norm(self._goal - self._pos) < GOAL_RADIUS)
        truncated = self._steps >= self.max_steps and not reached
        reward = 1.0 - 0.9 * self._steps / self.max_steps if reached else 0.0
        self._move_distractors()
        self._brightness = self._draw_brightness()
        return self._obs(), float(reward), reached, bool(truncated), self._info()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        background = np.clip(_BACKGROUND * self._brightness, 0, 255).astype(np.uint8)
        frame = np.broadcast_to(background, self._grid.shape[:2] + (3,)).copy()
        frame[np.abs(self._grid - self._goal).max(-1) < GOAL_RADIUS] = _GOAL
        for dot in self._distractors:
            frame[np.linalg.norm(self._grid - dot, axis=-1) < 0.05] = _DISTRACTOR
        frame[np.linalg.norm(self._grid - self._pos, axis=-1) < 0.05] = _AGENT
        return frame


def point_reach_expert(env: gym.Env) -> np.ndarray:
    """Head straight for the goal at full speed (slowing down for the last step)."""
    base = env.unwrapped
    return np.clip((base._goal - base._pos) / STEP, -1.0, 1.0).astype(np.float32)
