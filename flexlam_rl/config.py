"""LAM and training configuration, and the one strict parser every config dataclass goes through.

FlexLAM and the fixed-capacity LAM are the same class; they differ only here:
``nested_dropout=True`` (sample a prefix length per example) vs ``False`` with
``num_tokens=k``. Parsing is strict (types, ranges, unknown keys) because configs
arrive from other people's checkpoints and from the command line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from .errors import ConfigError

PREFIX_DISTS = ("uniform", "pow2", "geometric")
OBS_DTYPES = ("uint8", "float32")

T = TypeVar("T")


def parse_config(cls: type[T], data: Any, what: str) -> T:
    """Build the dataclass ``cls`` from a mapping (JSON, OmegaConf, a dict), strictly.

    Unknown keys, missing required keys and values its ``__post_init__`` rejects are
    :class:`ConfigError`\\ s that name ``what`` and the key, never a ``TypeError``.
    """
    data = plain(data)
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a mapping (a JSON object), got {type(data).__name__}.")
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"Unknown {what} keys {unknown}; known keys: {sorted(known)}.")
    required = [f.name for f in dataclasses.fields(cls)
                if f.init and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [name for name in required if name not in data]
    if missing:
        raise ConfigError(f"{what} is missing {missing}.")
    try:
        return cls(**data)
    except TypeError as exc:  # a wrong value type that slipped past __post_init__
        raise ConfigError(f"Malformed {what}: {exc}") from None


def plain(value: Any) -> Any:
    """OmegaConf containers and tuples -> plain dicts and lists, so every source validates the same."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - hydra-core is a dependency
        pass
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: int) -> None:
    if not is_int(value) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer in {low}..{high}, got {value!r}.")


def check_optional_positive_int(name: str, value: Any, none_means: str) -> None:
    """A positive integer or None (``none_means`` says what None stands for), or a clear error."""
    if value is not None and not (is_int(value) and value >= 1):
        raise ConfigError(f"{name} must be a positive integer or null ({none_means}), got {value!r}.")


def check_positive_ints(section: str, obj: Any, names: Sequence[str]) -> None:
    """Each named field of ``obj`` is a positive integer (``{section}.{name}`` in the message)."""
    for name in names:
        value = getattr(obj, name)
        if not is_int(value) or value < 1:
            raise ConfigError(f"{section}.{name} must be a positive integer, got {value!r}.")


@dataclass
class LAMConfig:
    """Architecture and bottleneck of a latent action model.

    ``obs_shape`` is the env's own layout: ``[H, W, C]`` for uint8 images, ``[D]`` for
    float vectors. ``preprocess`` records how raw env observations were turned into that
    layout (frame size, RGB rendering) so wrappers can redo it on a raw env.
    """

    obs_shape: list[int]
    obs_dtype: str = "uint8"
    num_tokens: int = 8
    fsq_levels: list[int] = field(default_factory=lambda: [8])
    latent_dim: int = 32
    nested_dropout: bool = True
    prefix_dist: str = "uniform"
    geometric_p: float = 0.35
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    hidden_dim: int = 256
    preprocess: dict[str, Any] = field(default_factory=lambda: {"kind": "identity"})
    # the recipe for pixel games (configs/lam/games.yaml): see flexlam_rl.model.lam.frame_loss and ImageFDM
    change_weight: float = 0.0  # weight of the MSE on the pixels that change, beside the whole-frame MSE
    predict_newest: bool = False  # frame stacks: predict the newest frame only (the rest is o_t's, shifted)
    code_norm: bool = False  # standardize each slot's encoder values with running statistics before FSQ (CodeNorm)
    idm_downsample: str = "stride"  # how the IDM's conv stages halve the frame: "stride" or "maxpool" (nets.down_block)
    fdm_latent_input: bool = False  # images: the latent also enters the FDM's first layer, tiled over the frame (ImageFDM)

    def __post_init__(self) -> None:
        self.validate()

    @property
    def is_image(self) -> bool:
        return len(self.obs_shape) == 3

    @property
    def codebook_size(self) -> int:
        return math.prod(self.fsq_levels)

    @property
    def frame_channels(self) -> int:
        """Channels of one frame: a stack of n frames has n times as many."""
        from .envs.pixels import validate_preprocess

        return self.obs_shape[2] // validate_preprocess(self.preprocess).get("frame_stack", 1)

    def validate(self) -> None:
        shape = self.obs_shape
        if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3):
            raise ConfigError(f"obs_shape must be [H, W, C] (images) or [D] (vectors), got {shape!r}.")
        if not all(is_int(s) and 1 <= s <= 4096 for s in shape):
            raise ConfigError(f"obs_shape entries must be integers in 1..4096, got {shape!r}.")
        if len(shape) == 3 and (not 1 <= shape[2] <= 16 or min(shape[:2]) < 8):
            raise ConfigError(f"image obs_shape must be [H>=8, W>=8, C in 1..16], got {shape!r}.")
        if self.obs_dtype not in OBS_DTYPES:
            raise ConfigError(f"obs_dtype must be one of {OBS_DTYPES}, got {self.obs_dtype!r}.")
        if len(shape) == 3 and self.obs_dtype != "uint8":
            raise ConfigError("image observations must be uint8 [H, W, C] (0..255).")
        check_int("num_tokens", self.num_tokens, 1, 64)
        if not isinstance(self.fsq_levels, (list, tuple)) or not 1 <= len(self.fsq_levels) <= 8:
            raise ConfigError(f"fsq_levels must be a list of 1..8 integers, got {self.fsq_levels!r}.")
        for level in self.fsq_levels:
            check_int("fsq_levels entry", level, 2, 64)
        if self.codebook_size > 65536:
            raise ConfigError(f"codebook_size prod(fsq_levels)={self.codebook_size} exceeds 65536.")
        check_int("latent_dim", self.latent_dim, 1, 4096)
        if not isinstance(self.nested_dropout, bool):
            raise ConfigError(f"nested_dropout must be true or false, got {self.nested_dropout!r}.")
        if self.prefix_dist not in PREFIX_DISTS:
            raise ConfigError(f"prefix_dist must be one of {PREFIX_DISTS}, got {self.prefix_dist!r}.")
        if not isinstance(self.geometric_p, (int, float)) or not 0.0 < self.geometric_p <= 1.0:
            raise ConfigError(f"geometric_p must be in (0, 1], got {self.geometric_p!r}.")
        if not isinstance(self.channels, (list, tuple)) or not 1 <= len(self.channels) <= 6:
            raise ConfigError(f"channels must be a list of 1..6 integers, got {self.channels!r}.")
        for width in self.channels:
            check_int("channels entry", width, 1, 1024)
        check_int("hidden_dim", self.hidden_dim, 1, 16384)
        if not isinstance(self.preprocess, Mapping) or "kind" not in self.preprocess:
            raise ConfigError(f"preprocess must be a mapping with a 'kind', got {self.preprocess!r}.")
        from .envs.pixels import recorded_preprocess, validate_preprocess

        self.preprocess = dict(recorded_preprocess(self.preprocess))  # a LAM made before the Atari conventions: as it was
        try:
            validate_preprocess(self.preprocess)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"Invalid preprocess in LAM config: {exc}") from None
        weight = self.change_weight
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not 0 <= weight <= 1e4:
            raise ConfigError(f"change_weight must be a number in [0, 10000], got {weight!r}.")
        if not isinstance(self.predict_newest, bool):
            raise ConfigError(f"predict_newest must be true or false, got {self.predict_newest!r}.")
        if not isinstance(self.code_norm, bool):
            raise ConfigError(f"code_norm must be true or false, got {self.code_norm!r}.")
        from .model.nets import DOWNSAMPLES

        if self.idm_downsample not in DOWNSAMPLES:
            raise ConfigError(f"idm_downsample must be one of {DOWNSAMPLES}, got {self.idm_downsample!r}.")
        if not isinstance(self.fdm_latent_input, bool):
            raise ConfigError(f"fdm_latent_input must be true or false, got {self.fdm_latent_input!r}.")
        if self.fdm_latent_input and not self.is_image:
            raise ConfigError("fdm_latent_input is for image LAMs; a vector LAM's FDM already reads the latent at its input.")
        if self.predict_newest and (not self.is_image or validate_preprocess(self.preprocess).get("frame_stack", 1) < 2):
            raise ConfigError("predict_newest needs frames stacked by the preprocessing (preprocess frame_stack >= 2, e.g. "
                              "preprocess={kind: atari, frame_stack: 2}); these observations are single frames.")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["obs_shape"] = list(self.obs_shape)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LAMConfig:
        """Strictly, as :func:`parse_config`; a config saved before the removed options (:data:`REMOVED_OPTIONS`) loads
        when it left them off, and is refused, naming the last version that had them, when it used them."""
        data = plain(data)
        if isinstance(data, Mapping):
            used = {k: data[k] for k in REMOVED_OPTIONS if k in data and data[k] != REMOVED_OPTIONS[k]}
            if used:
                raise ConfigError(f"LAM config sets {used}: these games-ablation penalties were removed from flexlam-rl "
                                  f"(unused by every preset); load or train this LAM with commit {REMOVED_AT} or earlier.")
            data = {k: v for k, v in data.items() if k not in REMOVED_OPTIONS}
        return parse_config(cls, data, "LAM config")


# LAM options that no preset used (penalties tried in the games recipe ablation, configs/games/variants.yaml), removed;
# a LAM config saved before with them off still loads, and fingerprints and cache keys count them at these values, so
# that a translator or policy made for a LAM before the removal still matches it
REMOVED_OPTIONS: dict[str, Any] = {"saturation_weight": 0.0, "spread_weight": 0.0, "spread_updates": 0}
REMOVED_AT = "88368c0"


@dataclass
class TrainConfig:
    """Optimization settings; steps are optimizer updates (not epochs) so budgets compare fairly."""

    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    log_every: int = 25
    eval_every: int = 500
    eval_transitions: int = 1024
    num_workers: int = 0
    device: str = "auto"
    progress: bool = True
    fused_optimizer: bool = True  # one fused AdamW kernel instead of a loop over parameters (same update rule)
    prefix_samples: int = 1  # FlexLAM: decode each example at this many stratified prefix lengths per update
    # Train to a plateau instead of for `steps` (see Plateau): checks every eval_every updates on eval_transitions
    # validation transitions; once every budget has plateaued the LR drops (plateau_decays times), then training stops.
    until_plateau: bool = False
    max_steps: int = 20_000  # the cap when until_plateau
    plateau_window: int = 4  # checks
    plateau_tol: float = 0.02  # relative improvement of the window's mean held-out loss over the window before
    plateau_decays: int = 1
    plateau_lr_factor: float = 0.1

    def __post_init__(self) -> None:
        check_positive_ints("train", self, ("steps", "batch_size", "checkpoint_every", "log_every", "eval_every",
                                            "keep_checkpoints", "prefix_samples", "max_steps", "plateau_window"))
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}.")
        if not 0 <= self.plateau_tol < 1 or not 0 < self.plateau_lr_factor <= 1 or self.plateau_decays < 0:
            raise ConfigError("train.plateau_tol must be in [0, 1), train.plateau_lr_factor in (0, 1] and "
                              f"train.plateau_decays >= 0; got {self.plateau_tol}, {self.plateau_lr_factor}, {self.plateau_decays}.")

    @property
    def total_steps(self) -> int:
        """The most updates this run makes: ``steps``, or the ``max_steps`` cap when training to a plateau."""
        return self.max_steps if self.until_plateau else self.steps


@dataclass
class Episodes:
    """Which episodes: ``count`` of them, episode i reset with ``seed + i``, each cut at ``max_steps`` (None: the
    task's own limit). What a collection records and what scores a policy (the same episodes for every policy,
    budget and baseline that reads them)."""

    count: int
    seed: int
    max_steps: int | None = None

    def __post_init__(self) -> None:
        check_int("episodes", self.count, 1, 10**6)
        check_optional_positive_int("max_episode_steps", self.max_steps, "the task's own limit")
