"""Observation preprocessing: what a LAM sees of an env, recorded as a plain dict and re-applied anywhere.

A preprocessing spec (``{"kind": "minigrid_rgb", "frame_size": 64, ...}``, validated by
:func:`validate_preprocess`) is stored with every dataset (in its env spec) and every LAM (in its
config); :func:`apply_preprocess` rebuilds the same observation pipeline on a raw env, which is how
wrappers, agents and ``gym.make`` of a latent id see what the LAM saw during pretraining.

Kinds: ``identity`` (the env's own observations), ``minigrid_rgb`` (MiniGrid's full-grid render),
``render_rgb`` (the env's ``rgb_array`` render: pixels for state-based envs), ``image`` (the env's own
image observations) and ``atari`` (Gymnasium's ``AtariPreprocessing``; ``pip install "flexlam-rl[atari]"``).
``atari`` also plays the game as RL users know it: ``noop_max`` no-op frames at each reset (30, DQN's
convention), ``fire_reset`` (FIRE at each reset and after each lost life on games that need it, by SB3's
``FireResetEnv`` and ``EpisodicLifeEnv``), and ``sticky`` (ALE v5's ``repeat_action_probability``, 0.25: each
emulator frame repeats the previous action with that probability). A lost life ends an episode only where an
agent trains (:func:`end_episodes_on_life_loss`); scored episodes are whole games. Pixel kinds take
``frame_size`` (square frames), ``grayscale``, ``fit`` (``stretch`` the whole frame,
or ``crop`` the centre square first, keeping the aspect), ``frame_skip`` (actions repeated, the last
two frames max-pooled) and ``frame_stack`` (the last n frames as channels).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from flexlam_rl.errors import FlexLAMError

PREPROCESS_KINDS = ("identity", "minigrid_rgb", "render_rgb", "image", "atari")
FITS = ("stretch", "crop")
LARGE_FRAME = 96  # above this, a LAM's training step gets expensive on a CPU: warn
GAME_FRAME = 64  # the frame size the games recipe is measured at (benchmarks/results/games): the default, and the advice
_PIXEL_DEFAULTS = {"frame_size": GAME_FRAME, "grayscale": False, "fit": "stretch", "frame_skip": 1, "frame_stack": 1}
ATARI_CONVENTIONS = {"noop_max": 30, "fire_reset": True, "sticky": 0.25}  # what the atari kind does unless told otherwise
# what an atari spec recorded before those keys existed did (data and LAMs made then): read so, never as today's defaults
ATARI_LEGACY = {"noop_max": 0, "fire_reset": False, "sticky": 0.25}
_KIND_DEFAULTS = {"minigrid_rgb": {"tile_size": 8}, "atari": {"frame_skip": 4, "grayscale": True, **ATARI_CONVENTIONS}}

# Packages that register Gymnasium ids on import, by id prefix.
_REGISTERING_PACKAGES = {"MiniGrid-": "minigrid", "BabyAI-": "minigrid", "ALE/": "ale_py"}


def ensure_env_registered(env_id: str) -> bool:
    """Import the package that registers ``env_id`` if needed; True when the id is known."""
    if env_id in gym.registry:
        return True
    for prefix, module in _REGISTERING_PACKAGES.items():
        if env_id.startswith(prefix):
            try:
                gym.register_envs(importlib.import_module(module))
            except ImportError:
                return False
    return env_id in gym.registry


def fit_frame(frame: np.ndarray, frame_size: int, fit: str = "stretch") -> np.ndarray:
    """Any ``[H, W, C]`` uint8 frame -> ``[S, S, C]``: ``stretch`` resizes it whole, ``crop`` first cuts the
    centre square (the aspect is kept). Bilinear, antialiased; a square frame of size S is returned as is."""
    frame = np.asarray(frame, dtype=np.uint8)
    if fit == "crop" and frame.shape[0] != frame.shape[1]:
        side = min(frame.shape[:2])
        top, left = (frame.shape[0] - side) // 2, (frame.shape[1] - side) // 2
        frame = frame[top : top + side, left : left + side]
    if frame.shape[0] == frame_size and frame.shape[1] == frame_size:
        return np.array(frame)
    image = Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)
    out = np.array(image.resize((frame_size, frame_size), Image.Resampling.BILINEAR), dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


resize_frame = fit_frame  # the name older code and notebooks use


class PixelObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observation = a frame (see :meth:`raw_frame`) fitted into ``frame_size`` x ``frame_size`` RGB.

    Only ``rgb_array`` rendering is advertised: the frames are the observations, and Gymnasium's env
    checker re-makes an env in every advertised render mode.
    """

    def __init__(self, env: gym.Env, frame_size: int = 64, fit: str = "stretch", **record: Any):
        gym.utils.RecordConstructorArgs.__init__(self, frame_size=frame_size, fit=fit, **record)
        gym.ObservationWrapper.__init__(self, env)
        _check_frame_size(frame_size)
        if fit not in FITS:
            raise FlexLAMError(f"preprocess fit must be one of {FITS}, got {fit!r}.")
        self.frame_size, self.fit = int(frame_size), fit
        self.observation_space = spaces.Box(0, 255, (self.frame_size, self.frame_size, 3), np.uint8)
        self.metadata = {**env.metadata, "render_modes": ["rgb_array"]}

    def raw_frame(self, observation: Any) -> np.ndarray:
        raise NotImplementedError

    def observation(self, observation: Any) -> np.ndarray:
        return fit_frame(self.raw_frame(observation), self.frame_size, self.fit)


class MiniGridPixels(PixelObservation):
    """Full-grid RGB render of a MiniGrid env: grids of every size map to one frame size, so one LAM
    can be pretrained across tasks. The mission string and direction are dropped: a LAM only sees pixels."""

    def __init__(self, env: gym.Env, frame_size: int = 64, tile_size: int = 8, fit: str = "stretch"):
        if not hasattr(env.unwrapped, "get_frame"):
            raise FlexLAMError(
                f"MiniGridPixels needs a MiniGrid env (one with get_frame()), got "
                f"{type(env.unwrapped).__name__}; use preprocess kind 'render_rgb' or 'image' for other envs."
            )
        super().__init__(env, frame_size, fit, tile_size=tile_size)
        self.tile_size = tile_size

    def raw_frame(self, observation: Any) -> np.ndarray:
        base = self.env.unwrapped
        return base.get_frame(highlight=base.highlight, tile_size=self.tile_size)


class RenderedPixels(PixelObservation):
    """Observation = the env's own ``rgb_array`` render: pixels for state-based envs."""

    def __init__(self, env: gym.Env, frame_size: int = 64, fit: str = "stretch"):
        if env.render_mode != "rgb_array":
            raise FlexLAMError(
                f"RenderedPixels needs render_mode='rgb_array', got {env.render_mode!r}; "
                f"create the env with gym.make(..., render_mode='rgb_array')."
            )
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: no "XDG_RUNTIME_DIR is invalid" from SDL
        super().__init__(env, frame_size, fit)

    def raw_frame(self, observation: Any) -> np.ndarray:
        return self.env.render()


class ImagePixels(PixelObservation):
    """Observation = the env's own image observation (``[H, W]`` or ``[H, W, C]`` uint8), fitted."""

    def __init__(self, env: gym.Env, frame_size: int = 64, fit: str = "stretch"):
        space = env.observation_space
        if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3)):
            raise FlexLAMError(f"preprocess kind 'image' needs uint8 image observations, got {space}; "
                               f"use 'render_rgb' to see a state-based env as pixels.")
        super().__init__(env, frame_size, fit)

    def raw_frame(self, observation: Any) -> np.ndarray:
        frame = np.asarray(observation)
        frame = frame[..., None] if frame.ndim == 2 else frame
        return np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame[..., :3]


class StackAsChannels(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """``FrameStackObservation``'s ``[n, H, W, C]`` -> ``[H, W, n * C]``: a stack is a LAM frame with more channels."""

    def __init__(self, env: gym.Env):
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ObservationWrapper.__init__(self, env)
        n, h, w, c = env.observation_space.shape
        self.observation_space = spaces.Box(0, 255, (h, w, n * c), np.uint8)

    def observation(self, observation: Any) -> np.ndarray:
        return np.concatenate(list(np.asarray(observation)), axis=-1)


def stack_frames(env: gym.Env, frame_stack: int) -> gym.Env:
    """A policy's view: the last ``frame_stack`` frames as channels, oldest first, zeros before the episode's
    first frame (SB3's ``VecFrameStack`` convention, so a policy trained on one acts in the other; a ball's
    velocity is invisible in one frame). Vectors and ``frame_stack=1`` pass through. The LAM and the translator
    still read single frames: stack on top of a latent-action wrapper, never below it."""
    space = env.observation_space
    if frame_stack == 1 or not (isinstance(space, spaces.Box) and len(space.shape) == 3):
        return env
    return StackAsChannels(gym.wrappers.FrameStackObservation(env, frame_stack, padding_type="zero"))


def _check_frame_size(frame_size: int) -> None:
    if not isinstance(frame_size, (int, np.integer)) or isinstance(frame_size, bool) or not 8 <= frame_size <= 512:
        raise FlexLAMError(f"frame_size must be an integer in 8..512, got {frame_size!r}.")


def validate_preprocess(preprocess: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A preprocessing spec (a mapping, a kind name, or None for identity), normalized with every default
    filled in, or a clear error naming the key and what it takes."""
    if preprocess is None:
        preprocess = {"kind": "identity"}
    elif isinstance(preprocess, str):
        preprocess = {"kind": preprocess}
    if not isinstance(preprocess, Mapping):
        raise FlexLAMError(f"preprocess must be a kind name ({', '.join(PREPROCESS_KINDS)}) or a mapping such as "
                           f"{{kind: render_rgb, frame_size: 64}}, got {preprocess!r}.")
    spec = dict(preprocess)
    kind = spec.get("kind", "identity")
    if kind not in PREPROCESS_KINDS:
        raise FlexLAMError(f"Unknown preprocess kind {kind!r}; expected one of {PREPROCESS_KINDS}, e.g. preprocess=render_rgb "
                           f"or preprocess={{kind: image, frame_size: 64, grayscale: true}}.")
    if kind == "identity":
        if set(spec) - {"kind"}:
            raise FlexLAMError(f"preprocess kind 'identity' takes no options, got {sorted(set(spec) - {'kind'})}.")
        return {"kind": "identity"}
    allowed = {"kind", *_PIXEL_DEFAULTS, *_KIND_DEFAULTS.get(kind, {})}
    unknown = set(spec) - allowed
    if unknown:
        raise FlexLAMError(f"Unknown preprocess keys {sorted(unknown)} for kind {kind!r}; allowed: {sorted(allowed)}.")
    out = {"kind": kind, **_PIXEL_DEFAULTS, **_KIND_DEFAULTS.get(kind, {}), **{k: v for k, v in spec.items() if k != "kind"}}
    _check_frame_size(out["frame_size"])
    for key in ("frame_skip", "frame_stack", "tile_size"):
        if key in out and (not isinstance(out[key], int) or isinstance(out[key], bool) or not 1 <= out[key] <= 64):
            raise FlexLAMError(f"preprocess {key} must be an integer in 1..64, got {out[key]!r}.")
    for key in ("grayscale", "fire_reset"):
        if key in out and not isinstance(out[key], bool):
            raise FlexLAMError(f"preprocess {key} must be true or false, got {out[key]!r}.")
    noop = out.get("noop_max", 0)
    if not isinstance(noop, int) or isinstance(noop, bool) or not 0 <= noop <= 1000:
        raise FlexLAMError(f"preprocess noop_max must be an integer in 0..1000 (no-op frames at each reset), got {noop!r}.")
    if "sticky" in out and (isinstance(out["sticky"], bool) or not isinstance(out["sticky"], (int, float))
                            or not 0.0 <= out["sticky"] < 1.0):
        raise FlexLAMError(f"preprocess sticky must be a probability in [0, 1) (ALE's repeat_action_probability), "
                           f"got {out['sticky']!r}.")
    if out["fit"] not in FITS:
        raise FlexLAMError(f"preprocess fit must be one of {FITS}, got {out['fit']!r}.")
    if out["frame_stack"] * (1 if out["grayscale"] else 3) > 16:
        raise FlexLAMError(f"frame_stack={out['frame_stack']} of {'grayscale' if out['grayscale'] else 'RGB'} frames makes "
                           f"more than 16 channels; stack fewer frames or use grayscale: true.")
    return out


def recorded_preprocess(preprocess: Mapping[str, Any] | str | None) -> Mapping[str, Any] | str | None:
    """A preprocessing spec read from a record (a dataset's env spec, a LAM's config) as it was meant when written:
    an ``atari`` spec from before the Atari conventions were recorded did what :data:`ATARI_LEGACY` says (no no-op
    starts, no FIRE), and gets those keys, so old data is never taken for data made under today's defaults. Any
    other spec is returned as is (not normalized: records keep their own spelling, and cache keys with them)."""
    if isinstance(preprocess, Mapping) and preprocess.get("kind") == "atari" and "noop_max" not in preprocess:
        return {**preprocess, **ATARI_LEGACY}
    return preprocess


def preprocessed_shape(preprocess: Mapping[str, Any] | str | None) -> tuple[int, int, int] | None:
    """The ``[H, W, C]`` a pixel spec produces (None for identity)."""
    spec = validate_preprocess(preprocess)
    if spec["kind"] == "identity":
        return None
    return spec["frame_size"], spec["frame_size"], spec["frame_stack"] * (1 if spec["grayscale"] else 3)


def apply_preprocess(env: gym.Env, preprocess: Mapping[str, Any] | str | None) -> gym.Env:
    """Wrap a raw env so its observations match what a LAM with this preprocessing saw.

    Gymnasium's own wrappers do what they can (``AtariPreprocessing``, ``GrayscaleObservation``,
    ``MaxAndSkipObservation``, ``FrameStackObservation``); resizing is ours (PIL), since Gymnasium's
    ``ResizeObservation`` needs OpenCV, which only the ``atari`` extra installs.
    """
    spec = validate_preprocess(preprocess)
    kind = spec["kind"]
    if kind == "identity":
        return env
    if kind == "atari":
        env = _atari(env, spec)
    else:
        if kind == "minigrid_rgb":
            env = MiniGridPixels(env, spec["frame_size"], spec["tile_size"], spec["fit"])
        elif kind == "render_rgb":
            env = RenderedPixels(env, spec["frame_size"], spec["fit"])
        else:
            env = ImagePixels(env, spec["frame_size"], spec["fit"])
        if spec["frame_skip"] > 1:  # on the frames: the last two of each skip are max-pooled
            env = gym.wrappers.MaxAndSkipObservation(env, skip=spec["frame_skip"])
        if spec["grayscale"]:
            env = gym.wrappers.GrayscaleObservation(env, keep_dim=True)
    if spec["frame_stack"] > 1:
        env = StackAsChannels(gym.wrappers.FrameStackObservation(env, spec["frame_stack"]))
    return env


def _atari(env: gym.Env, spec: dict[str, Any]) -> gym.Env:
    try:
        import cv2  # noqa: F401  (AtariPreprocessing resizes with OpenCV)
    except ImportError:
        raise FlexLAMError('preprocess kind "atari" needs OpenCV and ale-py: pip install "flexlam-rl[atari]".') from None
    if spec["fit"] == "crop":
        raise FlexLAMError('preprocess kind "atari" stretches the whole screen (AtariPreprocessing); for a centre crop use '
                           'kind "image" with fit: crop and frame_skip.')
    env = gym.wrappers.AtariPreprocessing(env, noop_max=spec["noop_max"], frame_skip=spec["frame_skip"],
                                          screen_size=spec["frame_size"], terminal_on_life_loss=False,
                                          grayscale_obs=spec["grayscale"], grayscale_newaxis=True, scale_obs=False)
    if spec["fire_reset"] and "FIRE" in env.unwrapped.get_action_meanings():
        env = FireAfterLifeLoss(env)
    env.metadata = {**env.metadata, "render_modes": ["rgb_array"]}
    return env


class FireAfterLifeLoss(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """FIRE at each reset and after each lost life, and play on: a scored episode is the whole game.

    SB3's ``FireResetEnv`` over its ``EpisodicLifeEnv`` does the work (a lost life "ends" their episode and
    their reset presses FIRE without resetting the game); this wrapper only continues the game through those
    ends. Training envs end episodes at a lost life on top of it (:func:`end_episodes_on_life_loss`).
    """

    def __init__(self, env: gym.Env):
        from stable_baselines3.common.atari_wrappers import EpisodicLifeEnv, FireResetEnv

        gym.utils.RecordConstructorArgs.__init__(self)
        self.lives = EpisodicLifeEnv(env)
        gym.Wrapper.__init__(self, FireResetEnv(self.lives))

    def reset(self, **kwargs: Any):
        self.lives.was_real_done = True  # a reset from outside starts a new game, after a step cap's truncation too
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated and not truncated and not self.lives.was_real_done:  # a life lost, the game goes on
            obs, _ = self.env.reset()  # SB3: a no-op step, then FIRE (the game is not reset)
            terminated = False
        return obs, reward, terminated, truncated, info


def end_episodes_on_life_loss(env: gym.Env) -> gym.Env:
    """A training env: on Atari a lost life ends the episode (SB3's ``EpisodicLifeEnv``, DQN's convention; its
    reset continues the game), put above the ``Monitor`` that records whole games. Other envs are returned as is."""
    if not hasattr(env.unwrapped, "ale"):
        return env
    from stable_baselines3.common.atari_wrappers import EpisodicLifeEnv

    return EpisodicLifeEnv(env)


def raw_env_kwargs(preprocess: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """What ``gym.make`` of the raw env needs for this preprocessing: ALE skips no frames itself (``AtariPreprocessing``
    does) and repeats actions with the spec's ``sticky`` probability."""
    spec = validate_preprocess(preprocess)
    return {"frameskip": 1, "repeat_action_probability": float(spec["sticky"])} if spec["kind"] == "atari" else {}


def skips_frames(preprocess: Mapping[str, Any] | str | None) -> bool:
    """Whether one agent step is several raw env steps: a step cap must then count agent steps, outside the skip."""
    spec = validate_preprocess(preprocess)
    return spec.get("frame_skip", 1) > 1


def preprocess_for_env(env: gym.Env, preprocess: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """The same frames from whatever this env offers: MiniGrid's full render, an ALE screen, an image
    observation, or an ``rgb_array`` render (a LAM pretrained on one kind of env can act in another)."""
    spec = validate_preprocess(recorded_preprocess(preprocess))
    if spec["kind"] == "identity":
        return spec
    space = env.observation_space
    if hasattr(env.unwrapped, "get_frame"):
        kind = "minigrid_rgb"
    elif spec["kind"] == "atari" and type(env.unwrapped).__name__ == "AtariEnv":
        kind = "atari"
    elif isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) in (2, 3):
        kind = "image"
    else:
        kind = "render_rgb"
    common = {key: spec[key] for key in _PIXEL_DEFAULTS}
    own = {key: spec.get(key, default) for key, default in _KIND_DEFAULTS.get(kind, {}).items() if key not in _PIXEL_DEFAULTS}
    return validate_preprocess({**common, "kind": kind, **own})


def needs_rgb_render(preprocess: Mapping[str, Any] | str | None) -> bool:
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
    spec = validate_preprocess(recorded_preprocess(preprocess))
    if not ensure_env_registered(env_id):
        hint = ' (pip install "flexlam-rl[atari]")' if env_id.startswith("ALE/") else ""
        raise FlexLAMError(f"Env {env_id!r} is not registered{hint}.")
    if spec["kind"] == "render_rgb":
        kwargs["render_mode"] = "rgb_array"
    elif render_mode is not None:
        kwargs["render_mode"] = render_mode
    if spec["kind"] == "atari":
        if not env_id.startswith("ALE/"):
            raise FlexLAMError(f"preprocess kind 'atari' is for ALE games (ALE/...), not {env_id!r}; use "
                               f"{_fitting_kind(env_id)} for this env.")
        kwargs = {**raw_env_kwargs(spec), **kwargs}
    if spec["kind"] == "minigrid_rgb" and not env_id.startswith(("MiniGrid-", "BabyAI-")):
        raise FlexLAMError(f"preprocess kind 'minigrid_rgb' is for MiniGrid envs, not {env_id!r}; use "
                           f"{_fitting_kind(env_id)} for this env.")
    return apply_preprocess(gym.make(env_id, **kwargs), spec)


def _fitting_kind(env_id: str) -> str:
    """The preprocess kind that suits an env id, as the text of an override (for error messages)."""
    if env_id.startswith(("MiniGrid-", "BabyAI-")):
        return "preprocess={kind: minigrid_rgb}"
    if env_id.startswith("ALE/"):
        return "preprocess=atari"
    return "preprocess={kind: image} (image observations) or preprocess={kind: render_rgb} (any env that renders)"
