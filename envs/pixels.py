"""Pixel observations at one fixed frame size, so one LAM can read every task.

A LAM's config records the preprocessing it was trained with as a plain dict
(``{"kind": "minigrid_rgb", "frame_size": 64}``); :func:`apply_preprocess` rebuilds the
same observation pipeline on a raw env, which is how wrappers and agents see what the
LAM saw during pretraining.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from flexlam_rl.errors import FlexLAMError

PREPROCESS_KINDS = ("identity", "minigrid_rgb", "render_rgb")

# Packages that register Gymnasium ids on import, by id prefix.
_REGISTERING_PACKAGES = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid", "ALE/": "ale_py"}


def ensure_env_registered(env_id: str) -> bool:
    """Import the package that registers ``env_id`` if needed; True when the id is known."""
    if env_id in gym.registry:
        return True
    for prefix, module in _REGISTERING_PACKAGES.items():
        if env_id.startswith(prefix):
            try:
                importlib.import_module(module)
            except ImportError:
                return False
    return env_id in gym.registry


def resize_frame(frame: np.ndarray, frame_size: int) -> np.ndarray:
    """[H, W, 3] uint8 -> [S, S, 3] uint8 (antialiased; a no-op when already S x S)."""
    if frame.shape[0] == frame_size and frame.shape[1] == frame_size:
        return np.array(frame, dtype=np.uint8)
    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    return np.array(image.resize((frame_size, frame_size), Image.Resampling.BILINEAR), dtype=np.uint8)


def _frame_space(frame_size: int) -> spaces.Box:
    return spaces.Box(low=0, high=255, shape=(frame_size, frame_size, 3), dtype=np.uint8)


class MiniGridPixels(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Full-grid RGB render of a MiniGrid env, resized to ``frame_size``.

    Grids of different sizes all map to the same frame size, so one LAM can be
    pretrained across tasks. The mission string and direction are dropped: a LAM only
    sees pixels.
    """

    def __init__(self, env: gym.Env, frame_size: int = 64, tile_size: int = 8):
        gym.utils.RecordConstructorArgs.__init__(self, frame_size=frame_size, tile_size=tile_size)
        gym.ObservationWrapper.__init__(self, env)
        if not hasattr(env.unwrapped, "get_frame"):
            raise FlexLAMError(
                f"MiniGridPixels needs a MiniGrid env (one with get_frame()), got "
                f"{type(env.unwrapped).__name__}; use preprocess kind 'render_rgb' for other envs."
            )
        _check_frame_size(frame_size)
        self.frame_size = frame_size
        self.tile_size = tile_size
        self.observation_space = _frame_space(frame_size)

    def observation(self, observation: Any) -> np.ndarray:
        base = self.env.unwrapped
        frame = base.get_frame(highlight=base.highlight, tile_size=self.tile_size)
        return resize_frame(frame, self.frame_size)


class RenderedPixels(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observation = the env's own ``rgb_array`` render, resized: pixels for state-based envs."""

    def __init__(self, env: gym.Env, frame_size: int = 64):
        gym.utils.RecordConstructorArgs.__init__(self, frame_size=frame_size)
        gym.ObservationWrapper.__init__(self, env)
        if env.render_mode != "rgb_array":
            raise FlexLAMError(
                f"RenderedPixels needs render_mode='rgb_array', got {env.render_mode!r}; "
                f"create the env with gym.make(..., render_mode='rgb_array')."
            )
        _check_frame_size(frame_size)
        self.frame_size = frame_size
        self.observation_space = _frame_space(frame_size)

    def observation(self, observation: Any) -> np.ndarray:
        return resize_frame(self.env.render(), self.frame_size)


def _check_frame_size(frame_size: int) -> None:
    if not isinstance(frame_size, (int, np.integer)) or not 16 <= frame_size <= 512:
        raise FlexLAMError(f"frame_size must be an integer in 16..512, got {frame_size!r}.")


def validate_preprocess(preprocess: Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalize a preprocessing spec to ``{"kind", "frame_size", ...}`` or raise a clear error."""
    spec = dict(preprocess or {"kind": "identity"})
    kind = spec.get("kind", "identity")
    if kind not in PREPROCESS_KINDS:
        raise FlexLAMError(f"Unknown preprocess kind {kind!r}; expected one of {PREPROCESS_KINDS}.")
    unknown = set(spec) - {"kind", "frame_size", "tile_size"}
    if unknown:
        raise FlexLAMError(f"Unknown preprocess keys {sorted(unknown)}; allowed: kind, frame_size, tile_size.")
    if kind == "identity":
        return {"kind": "identity"}
    frame_size = int(spec.get("frame_size", 64))
    _check_frame_size(frame_size)
    out: dict[str, Any] = {"kind": kind, "frame_size": frame_size}
    if kind == "minigrid_rgb":
        out["tile_size"] = int(spec.get("tile_size", 8))
    return out


def apply_preprocess(env: gym.Env, preprocess: Mapping[str, Any] | None) -> gym.Env:
    """Wrap a raw env so its observations match what a LAM with this preprocessing saw."""
    spec = validate_preprocess(preprocess)
    if spec["kind"] == "minigrid_rgb":
        return MiniGridPixels(env, frame_size=spec["frame_size"], tile_size=spec["tile_size"])
    if spec["kind"] == "render_rgb":
        return RenderedPixels(env, frame_size=spec["frame_size"])
    return env


def needs_rgb_render(preprocess: Mapping[str, Any] | None) -> bool:
    """Whether the raw env must be created with ``render_mode='rgb_array'``."""
    return validate_preprocess(preprocess)["kind"] == "render_rgb"


def make_pixel_env(
    env_id: str,
    preprocess: Mapping[str, Any] | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    render_mode: str | None = None,
) -> gym.Env:
    """Entry point of the registered ``flexlam/...`` envs: ``gym.make(env_id)`` + preprocessing.

    Everything is passed as JSON-friendly kwargs so Minari can store the env spec and
    ``MinariDataset.recover_environment()`` can rebuild it in another process.
    """
    kwargs = dict(env_kwargs or {})
    ensure_env_registered(env_id)
    if needs_rgb_render(preprocess):
        kwargs["render_mode"] = "rgb_array"
    elif render_mode is not None:
        kwargs["render_mode"] = render_mode
    return apply_preprocess(gym.make(env_id, **kwargs), preprocess)
