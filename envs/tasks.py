"""Named tasks: a Gymnasium id, the observation preprocessing a LAM sees, and an expert.

A config names a task (``env=minigrid-doorkey``) or any Gymnasium id (``env=Hopper-v5``,
no expert, identity preprocessing). Every task is also registered as
``flexlam/<name>-v0`` so any Gymnasium client can ``gym.make`` its pixel version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym

from flexlam_rl.errors import FlexLAMError

from .pixels import ATARI_CONVENTIONS, ensure_env_registered, validate_preprocess
from .procgen import GAMES as PROCGEN_GAMES
from .procgen import register_procgen

_PIXELS_64 = {"kind": "minigrid_rgb", "frame_size": 64}
_RENDER_64 = {"kind": "render_rgb", "frame_size": 64}
# pip install "flexlam-rl[atari]"; the conventions are spelled out: a spec without them is read as a record made before them
_ATARI_64 = {"kind": "atari", "frame_size": 64, "grayscale": True, "frame_skip": 4, **ATARI_CONVENTIONS}
_PROCGEN_64 = {"kind": "image", "frame_size": 64}  # Procgen's own 64x64 RGB frames; pip install "flexlam-rl[procgen]"


@dataclass(frozen=True)
class Task:
    """One environment as flexlam-rl uses it."""

    name: str
    env_id: str
    preprocess: Mapping[str, Any] = field(default_factory=lambda: {"kind": "identity"})
    max_episode_steps: int | None = None
    expert: str | None = None

    @property
    def gym_id(self) -> str:
        """The registered id of this task's preprocessed env."""
        return f"flexlam/{self.name}-v0"

    def make(self, max_episode_steps: int | None = None, **env_kwargs: Any) -> gym.Env:
        """The preprocessed env (pixels at the task's frame size, or raw vectors)."""
        _ensure_registered(self)
        return gym.make(
            self.gym_id,
            max_episode_steps=max_episode_steps or self.max_episode_steps,
            env_kwargs=env_kwargs or None,
        )


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("minigrid-empty", "MiniGrid-Empty-Random-6x6-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("minigrid-empty5", "MiniGrid-Empty-5x5-v0", _PIXELS_64, 50, "minigrid_planner"),
        Task("minigrid-doorkey", "MiniGrid-DoorKey-6x6-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("minigrid-fourrooms", "MiniGrid-FourRooms-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("minigrid-lavagap", "MiniGrid-LavaGapS6-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("minigrid-crossing", "MiniGrid-SimpleCrossingS9N1-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("minigrid-unlock", "MiniGrid-Unlock-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("minigrid-doorkey8", "MiniGrid-DoorKey-8x8-v0", _PIXELS_64, 150, "minigrid_planner"),
        Task("cartpole", "CartPole-v1", {"kind": "identity"}, 500, "cartpole_pd"),
        Task("cartpole-pixels", "CartPole-v1", _RENDER_64, 500, "cartpole_pd"),
        Task("pendulum", "Pendulum-v1", {"kind": "identity"}, 200, "pendulum_swingup"),
        Task("pendulum-pixels", "Pendulum-v1", _RENDER_64, 200, "pendulum_swingup"),
        Task("mountaincar", "MountainCar-v0", {"kind": "identity"}, 200, "mountaincar_momentum"),
        Task("point-reach", "flexlam/PointReach-v0", {"kind": "identity"}, 50, "point_reach"),
        Task("point-reach-pixels", "flexlam/PointReach-v0", _RENDER_64, 50, "point_reach"),
        # action-independent variation (issue: where the bottleneck trade-off bites): distractor dots, flicker
        Task("point-reach-pixels-d1", "flexlam/PointReachD1-v0", _RENDER_64, 50, "point_reach"),
        Task("point-reach-pixels-d3", "flexlam/PointReachD3-v0", _RENDER_64, 50, "point_reach"),
        Task("point-reach-pixels-d3f", "flexlam/PointReachD3F-v0", _RENDER_64, 50, "point_reach"),
        Task("minigrid-dynamic", "MiniGrid-Dynamic-Obstacles-6x6-v0", _PIXELS_64, 100, "minigrid_planner"),
        Task("breakout", "ALE/Breakout-v5", _ATARI_64, 2000, "breakout_tracker"),
        Task("pong", "ALE/Pong-v5", _ATARI_64, 2000, "pong_tracker"),
        Task("freeway", "ALE/Freeway-v5", _ATARI_64, 2100, "freeway_up"),
        *(Task(f"procgen-{game}", f"flexlam/Procgen-{game}-v0", _PROCGEN_64, 1000) for game in PROCGEN_GAMES),
    ]
}


POINT_REACH_VARIANTS = {  # gym id -> PointReachEnv kwargs
    "flexlam/PointReach-v0": {},
    "flexlam/PointReachD1-v0": {"distractors": 1},
    "flexlam/PointReachD3-v0": {"distractors": 3},
    "flexlam/PointReachD3F-v0": {"distractors": 3, "flicker": 0.15},
}


def get_task(name: str, preprocess: Mapping[str, Any] | None = None) -> Task:
    """A named task, or an ad-hoc task wrapping any registered Gymnasium id."""
    if name in TASKS:
        task = TASKS[name]
    elif ensure_env_registered(name):
        # MiniGrid's own observations hold a mission string Minari cannot store: see its frames instead
        default = _PIXELS_64 if name.startswith(("MiniGrid-", "BabyAI-")) else {"kind": "identity"}
        task = Task(name=_safe_name(name), env_id=name, preprocess=default)
    else:
        raise FlexLAMError(
            f"Unknown env {name!r}: not a flexlam task ({', '.join(sorted(TASKS))}) and not a "
            f"registered Gymnasium id. Import the package that registers it, or pick a task above."
        )
    if preprocess is not None:
        spec = validate_preprocess(preprocess)
        if spec != validate_preprocess(task.preprocess):  # a variant gets its own gym id
            suffix = f"{spec['kind'].replace('_', '')}{spec.get('frame_size', '')}"
            task = replace(task, name=f"{task.name}-{suffix}", preprocess=spec)
    return task


def task_at_frame_size(name: str, frame_size: int | None) -> Task:
    """A task with its pixel frames resized to ``frame_size`` (vector tasks are unchanged)."""
    task = get_task(name)
    if frame_size is None or task.preprocess.get("kind", "identity") == "identity":
        return task
    return get_task(name, {**task.preprocess, "frame_size": int(frame_size)})


def _safe_name(env_id: str) -> str:
    return env_id.replace("/", "-").replace(":", "-").lower()


def _ensure_registered(task: Task) -> None:
    spec = gym.registry.get(task.gym_id)
    kwargs = {"env_id": task.env_id, "preprocess": dict(task.preprocess)}
    if spec is not None and spec.kwargs == kwargs:
        return
    # A string entry point keeps the spec JSON-serializable for Minari's recover_environment().
    gym.register(task.gym_id, entry_point="flexlam_rl.envs.pixels:make_pixel_env", kwargs=kwargs)


def register_tasks() -> None:
    """Register ``flexlam/<task>-v0`` ids for every named task and the PointReach env (idempotent)."""
    register_procgen()
    for env_id, kwargs in POINT_REACH_VARIANTS.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="flexlam_rl.envs.point_reach:PointReachEnv", max_episode_steps=50, kwargs=kwargs)
    for task in TASKS.values():
        _ensure_registered(task)
