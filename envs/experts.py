"""Scripted behaviours that generate action-free data: experts, random, epsilon-noised experts.

Experts read the simulator state through ``env.unwrapped`` (grid, agent pose, physics
state), never the pixels, so the same expert works under any observation wrapper.
The BabyAI bot only understands BabyAI missions, so MiniGrid gets a small BFS planner
that solves Empty, DoorKey, FourRooms, LavaGap, Crossing, Unlock and similar tasks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from flexlam_rl.errors import FlexLAMError

Policy = Callable[[gym.Env], Any]
"""A behaviour: maps the live env (state read via ``env.unwrapped``) to an action."""

BEHAVIOURS = ("expert", "random", "noisy", "sticky")
STICKY_MEAN_HOLD = 4  # sticky: a random action is held for a geometric number of steps with this mean

# MiniGrid actions and directions (minigrid.core.actions.Actions, DIR_TO_VEC).
_LEFT, _RIGHT, _FORWARD, _PICKUP, _DROP, _TOGGLE = 0, 1, 2, 3, 4, 5
_DIR_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))


def _passable(cell: Any, carrying: Any) -> bool:
    """Can the agent end up inside this cell (possibly after toggling a door open)?"""
    if cell is None:
        return True
    if cell.type == "lava" or cell.type == "wall":
        return False
    if cell.type == "door":
        if cell.is_open or not cell.is_locked:
            return True
        return carrying is not None and carrying.type == "key" and carrying.color == cell.color
    return bool(cell.can_overlap())


def _bfs_first_action(base: Any, is_target: Callable[[int, int, int], bool]) -> int | None:
    """First action of a shortest left/right/forward path to a pose satisfying ``is_target``."""
    grid, carrying = base.grid, base.carrying
    start = (int(base.agent_pos[0]), int(base.agent_pos[1]), int(base.agent_dir))
    if is_target(*start):
        return -1
    seen = {start}
    queue: deque[tuple[tuple[int, int, int], int]] = deque()
    x, y, d = start
    for action, nxt in _neighbours(grid, carrying, x, y, d):
        if nxt not in seen:
            seen.add(nxt)
            queue.append((nxt, action))
    while queue:
        (x, y, d), first = queue.popleft()
        if is_target(x, y, d):
            return first
        for _, nxt in _neighbours(grid, carrying, x, y, d):
            if nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, first))
    return None


def _neighbours(grid: Any, carrying: Any, x: int, y: int, d: int):
    yield _LEFT, (x, y, (d - 1) % 4)
    yield _RIGHT, (x, y, (d + 1) % 4)
    dx, dy = _DIR_VEC[d]
    fx, fy = x + dx, y + dy
    if 0 <= fx < grid.width and 0 <= fy < grid.height and _passable(grid.get(fx, fy), carrying):
        yield _FORWARD, (fx, fy, d)


def _find(grid: Any, kind: str) -> list[tuple[int, int, Any]]:
    found = []
    for j in range(grid.height):
        for i in range(grid.width):
            cell = grid.get(i, j)
            if cell is not None and cell.type == kind:
                found.append((i, j, cell))
    return found


def _facing(pos: tuple[int, int]) -> Callable[[int, int, int], bool]:
    def test(x: int, y: int, d: int) -> bool:
        dx, dy = _DIR_VEC[d]
        return (x + dx, y + dy) == pos

    return test


def minigrid_planner(env: gym.Env) -> int:
    """Go to the goal; fetch the key and unlock a door first when the goal is walled off."""
    base = env.unwrapped
    grid = base.grid

    def step_towards(action: int | None) -> int | None:
        if action != _FORWARD:
            return action
        dx, dy = _DIR_VEC[base.agent_dir]
        front = grid.get(base.agent_pos[0] + dx, base.agent_pos[1] + dy)
        if front is not None and front.type == "door" and not front.is_open:
            return _TOGGLE  # open it first; the next step walks through
        return _FORWARD

    goals = _find(grid, "goal")
    for gx, gy, _ in goals:
        action = _bfs_first_action(base, lambda x, y, d, g=(gx, gy): (x, y) == g)
        if action is not None and action >= 0:
            return step_towards(action)

    # Goal unreachable (or absent, e.g. Unlock): work through the locked doors.
    for dx_, dy_, door in _find(grid, "door"):
        if door.is_open:
            continue
        carrying = base.carrying
        has_key = carrying is not None and carrying.type == "key" and carrying.color == door.color
        if door.is_locked and not has_key:
            for kx, ky, key in _find(grid, "key"):
                if key.color != door.color:
                    continue
                action = _bfs_first_action(base, _facing((kx, ky)))
                if action == -1:
                    return _PICKUP
                if action is not None:
                    return action
            continue
        action = _bfs_first_action(base, _facing((dx_, dy_)))
        if action == -1:
            return _TOGGLE
        if action is not None:
            return action
    return int(base.np_random.integers(0, 3))  # nothing plannable: wander


def cartpole_pd(env: gym.Env) -> int:
    """PD balance on pole angle plus a weak cart-centering term; reaches the 500-step cap."""
    x, x_dot, theta, theta_dot = env.unwrapped.state
    return int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0.0)


def pendulum_swingup(env: gym.Env) -> np.ndarray:
    """Energy pumping far from upright, PD control near it (gym Pendulum: theta=0 is up)."""
    theta, theta_dot = env.unwrapped.state
    angle = ((theta + np.pi) % (2 * np.pi)) - np.pi
    if np.cos(angle) > 0.85:
        torque = -(12.0 * angle + 2.5 * theta_dot)
    else:
        energy = 0.5 * theta_dot**2 / 3.0 + 5.0 * np.cos(angle)  # g/2 * cos, m=l=1
        torque = 2.0 * np.sign(theta_dot * (5.0 - energy)) if theta_dot != 0 else 2.0
    return np.array([np.clip(torque, -2.0, 2.0)], dtype=np.float32)


def mountaincar_momentum(env: gym.Env) -> Any:
    """Push along the velocity: builds momentum and climbs the hill."""
    _, velocity = env.unwrapped.state
    if isinstance(env.action_space, gym.spaces.Box):
        return np.array([1.0 if velocity >= 0 else -1.0], dtype=np.float32)
    return 2 if velocity >= 0 else 0


def breakout_tracker(env: gym.Env) -> int:
    """Serve, then keep the paddle under the ball (ALE RAM: paddle x at 72, ball x at 99, ball y at 101).

    About 49 points an episode against 2-3 for random actions: a strong enough expert for latent BC.
    """
    ram = env.unwrapped.ale.getRAM()
    paddle_x, ball_x, ball_y = int(ram[72]), int(ram[99]), int(ram[101])
    if ball_y == 0:
        return 1  # FIRE: no ball in play
    target = ball_x - 8  # the paddle's x is its left edge
    if paddle_x < target - 2:
        return 2  # RIGHT
    if paddle_x > target + 2:
        return 3  # LEFT
    return 0


def pong_tracker(env: gym.Env) -> int:
    """Serve, then keep the paddle level with the ball (ALE RAM: paddle y at 51, ball y at 54; 0 = no ball).

    RIGHT moves the paddle up, LEFT down. Over 1200 steps it loses about 5 points where random actions lose 21, and
    wins one to three.
    """
    ram = env.unwrapped.ale.getRAM()
    paddle_y, ball_y = int(ram[51]), int(ram[54])
    if ball_y == 0:
        return 1  # FIRE: serve
    target = ball_y - 14  # the paddle's y is its top
    if paddle_y < target - 2:
        return 3  # LEFT: down
    if paddle_y > target + 2:
        return 2  # RIGHT: up
    return 0


def freeway_up(env: gym.Env) -> int:
    """Walk the chicken up, whatever the cars do (about 21 crossings a game; random actions: about 0)."""
    return 1  # UP


def _point_reach(env: gym.Env) -> np.ndarray:
    from .point_reach import point_reach_expert

    return point_reach_expert(env)


EXPERTS: dict[str, Policy] = {
    "minigrid_planner": minigrid_planner,
    "point_reach": _point_reach,
    "cartpole_pd": cartpole_pd,
    "pendulum_swingup": pendulum_swingup,
    "mountaincar_momentum": mountaincar_momentum,
    "breakout_tracker": breakout_tracker,
    "pong_tracker": pong_tracker,
    "freeway_up": freeway_up,
}


def _sticky(space: gym.Space, rng: np.random.Generator) -> Policy:
    held: list[Any] = []

    def sticky(env: gym.Env) -> Any:
        if not held or rng.random() < 1.0 / STICKY_MEAN_HOLD:
            held[:] = [space.sample()]
        return held[0]

    return sticky


def make_behaviour(
    behaviour: str,
    action_space: gym.Space,
    expert: str | None,
    seed: int,
    epsilon: float = 0.3,
) -> Policy:
    """Build the data-collection policy named by ``behaviour``: ``expert``, ``random``, ``noisy`` (the expert
    with probability ``epsilon`` of a random action) or ``sticky`` (random actions, each held for a geometric
    number of steps with mean ``STICKY_MEAN_HOLD``, so that motion builds up and shows in the frames; for envs
    without an expert, e.g. Procgen)."""
    if behaviour not in BEHAVIOURS:
        raise FlexLAMError(f"Unknown behaviour {behaviour!r}; expected one of {BEHAVIOURS}.")
    space = action_space
    space.seed(seed)
    if behaviour == "random":
        return lambda env: space.sample()
    if behaviour == "sticky":
        return _sticky(space, np.random.default_rng(seed))
    if expert is None or expert not in EXPERTS:
        raise FlexLAMError(
            f"Behaviour {behaviour!r} needs a scripted expert, but this env has "
            f"{'none' if expert is None else repr(expert)}; known experts: {sorted(EXPERTS)}. "
            f"Use behaviour=random, or collect with a task that has an expert."
        )
    expert_fn = EXPERTS[expert]
    if behaviour == "expert":
        return expert_fn
    if not 0.0 <= epsilon <= 1.0:
        raise FlexLAMError(f"epsilon must be in [0, 1], got {epsilon}.")
    rng = np.random.default_rng(seed)

    def noisy(env: gym.Env) -> Any:
        return space.sample() if rng.random() < epsilon else expert_fn(env)

    return noisy
