"""Act in latent-action space: tokens -> null-filled prefix latent -> translator -> env.step.

``LatentActionWrapper(env, lam, translator, prefix_len=k)`` exposes
``action_space = MultiDiscrete([V] * k)``; observations pass through unchanged, after the
same preprocessing the LAM was trained with (applied here when given a raw env).
``AdaptiveLatentActionWrapper(env, lam, translator)`` lets the agent choose each step's length
too (``MultiDiscrete([V] * K + [K])``), and ``TokenCost(env, c)`` takes c per token used off the
reward. One behaviour per wrapper, as Gymnasium's own: observation preprocessing is
:func:`match_lam_observations`. ``LatentActionVectorWrapper`` and ``TokenCostVector`` are the
Gymnasium vector forms, translating every sub-env's tokens in one batch (the SB3 ``VecEnv`` forms are
``flexlam_rl.agents.LatentActionVecEnv`` and ``VecTokenCost``). This module does not import
Stable-Baselines3. ``gym.make("flexlam/LatentAction-v0", env_id=..., lam=<dir>, translator=<dir>,
prefix_len=k)`` builds the wrapped env from checkpoint paths, so any
Gymnasium client can create it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from ..align import Translator, check_action_space_fits
from ..envs import apply_preprocess, get_task
from ..envs.pixels import ensure_env_registered, preprocess_for_env, raw_env_kwargs, recorded_preprocess, skips_frames, validate_preprocess
from ..errors import FlexLAMError
from ..model.budgets import check_prefix_len
from ..model.lam import FlexLAM

ADAPTIVE = "adaptive"  # prefix_len value: the agent chooses each step's length (AdaptiveLatentActionWrapper)


def _spec_arg(obj: Any) -> Any:
    """What the env spec records: a path when there is one (JSON-friendly), else the object itself."""
    if isinstance(obj, (str, Path)):
        return str(obj)
    return getattr(obj, "source_path", None) or obj


def match_lam_observations(env: gym.Env, lam: FlexLAM) -> gym.Env:
    """Give a raw env the LAM's observations, by its recorded preprocessing (frame size, grayscale, crop,
    frame skip and stack), taken from whatever frames this env offers; or fail clearly."""
    expected = tuple(lam.config.obs_shape)
    if getattr(env.observation_space, "shape", None) == expected:
        return env
    try:
        wrapped = apply_preprocess(env, preprocess_for_env(env, lam.config.preprocess))
    except FlexLAMError as exc:
        reason = f": {exc}"
    else:
        if getattr(wrapped.observation_space, "shape", None) == expected:
            return wrapped
        reason = f"; that gives {wrapped.observation_space}"
    raise FlexLAMError(
        f"This env ({env_name(env)}) gives observations {env.observation_space}, which cannot be matched to the LAM's "
        f"{list(expected)} (trained on {trained_on(lam)}) with its preprocessing {lam.config.preprocess}{reason}. Use the "
        f"LAM in an env like the one it was trained on, or wrap this env to produce {list(expected)} observations."
    )


def trained_on(lam: FlexLAM) -> str:
    """What a LAM was pretrained on, for errors that say why a model and an env do not fit."""
    datasets = list(getattr(lam, "extra", {}).get("datasets", []))
    return ", ".join(datasets) if datasets else "data its checkpoint does not record"


def env_name(env: gym.Env) -> str:
    return env.spec.id if env.spec is not None else type(env.unwrapped).__name__


def lam_env(env: str, lam: FlexLAM, render_mode: str | None = None, env_kwargs: dict[str, Any] | None = None,
            max_episode_steps: int | None = None) -> gym.Env:
    """A task or Gymnasium id, made raw and given the observations ``lam`` reads (its recorded preprocessing).

    Pixel LAMs get an ``rgb_array`` env unless ``render_mode`` says otherwise (rendered frames need it).
    ``max_episode_steps``: None keeps the task's own limit.
    """
    task = get_task(env)
    kwargs = dict(env_kwargs or {})
    spec = validate_preprocess(recorded_preprocess(lam.config.preprocess))
    if render_mode is not None or spec["kind"] != "identity":
        kwargs["render_mode"] = render_mode or "rgb_array"
    if spec["kind"] == "atari" and task.env_id.startswith("ALE/"):
        kwargs = {**raw_env_kwargs(spec), **kwargs}
    ensure_env_registered(task.env_id)
    cap = max_episode_steps or task.max_episode_steps
    if not skips_frames(spec):
        return match_lam_observations(gym.make(task.env_id, max_episode_steps=cap, **kwargs), lam)
    # one agent step is several raw steps: the cap counts agent steps, outside the skip (as a task's own env does)
    wrapped = match_lam_observations(gym.make(task.env_id, **kwargs), lam)
    return gym.wrappers.TimeLimit(wrapped, cap) if cap else wrapped


def validate_tokens(tokens: Any, prefix_len: int, codebook_size: int, batch: int | None = None) -> np.ndarray:
    """Check latent actions: integers in 0..V-1, shape ``[k]`` (or ``[n, k]``); clear error otherwise."""
    arr = np.asarray(tokens)
    shape = (prefix_len,) if batch is None else (batch, prefix_len)
    if arr.shape != shape:
        raise FlexLAMError(f"latent action must have shape {shape} (k = {prefix_len} tokens), got {arr.shape}.")
    arr = _integers(arr, "latent action tokens")
    if arr.size and (arr.min() < 0 or arr.max() >= codebook_size):
        raise FlexLAMError(f"latent action tokens must be in 0..{codebook_size - 1}, got {arr.min()}..{arr.max()}.")
    return arr


def validate_adaptive_action(action: Any, num_tokens: int, codebook_size: int, batch: int | None = None) -> np.ndarray:
    """Check agent-chosen-length actions: K tokens in 0..V-1, then a length choice c in 0..K-1 (length c + 1)."""
    arr = np.asarray(action)
    shape = (num_tokens + 1,) if batch is None else (batch, num_tokens + 1)
    if arr.shape != shape:
        raise FlexLAMError(f"adaptive latent action must have shape {shape}: K = {num_tokens} tokens, then a length "
                           f"choice c (the code keeps c + 1 tokens), got {arr.shape}.")
    arr = _integers(arr, "adaptive latent action entries")
    validate_tokens(arr[..., :num_tokens], num_tokens, codebook_size, batch)
    choice = arr[..., num_tokens]
    if choice.min() < 0 or choice.max() >= num_tokens:
        raise FlexLAMError(f"length choice (the last entry) must be in 0..{num_tokens - 1}, i.e. a length of 1..{num_tokens} "
                           f"tokens, got {choice.min()}..{choice.max()}.")
    return arr


def _integers(arr: np.ndarray, what: str) -> np.ndarray:
    """int64, accepting whole floats (what some agents emit); anything else is a clear error."""
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise FlexLAMError(f"{what} must be integers, got dtype {arr.dtype}.")
    return arr.astype(np.int64)


class BatchMemo:
    """An LRU memo of a pure, batched function of array rows (keyed by each row's bytes).

    ``memo(rows)`` returns ``fn(rows)`` stacked from cached rows; only the rows never seen (or
    evicted) are computed, in one batch. ``hits`` and ``misses`` count rows.
    """

    def __init__(self, fn: Any, size: int):
        self.fn, self.size = fn, size
        self.store: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        keys = [row.tobytes() for row in rows]
        missing = [i for i, key in enumerate(keys) if key not in self.store]
        if missing:
            for i, value in zip(missing, self.fn(rows[missing])):
                self.store[keys[i]] = value
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        for key in keys:
            self.store.move_to_end(key)
        values = [self.store[key] for key in keys]
        while len(self.store) > self.size:
            self.store.popitem(last=False)
        return values[0][None] if len(values) == 1 else torch.stack(values)

    def clear(self) -> None:
        self.store.clear()


def check_translator_fits(translator: Translator, lam: FlexLAM) -> None:
    """Refuse a translator aligned on another LAM (its recorded :meth:`~flexlam_rl.model.lam.FlexLAM.fingerprint`): the same
    K and action space are not enough, its tokens would mean something else. Translators made before the fingerprint
    was recorded are not checked."""
    from ..checkpoint import origin

    recorded = translator.config.lam_fingerprint
    if recorded is not None and recorded != lam.fingerprint():
        raise FlexLAMError(f"The translator ({origin(translator)}) was aligned on another LAM (fingerprint {recorded}) than this "
                           f"LAM ({origin(lam)}, fingerprint {lam.fingerprint()}); use the translator aligned on this LAM "
                           f"(flexlam-align lam_dir=...).")


class LatentTranslation:
    """Tokens ``[n, k]`` (+ o_t) -> env actions, batched: shared by the single and every vector wrapper.

    ``lam`` and ``translator`` are models or the directories they were saved to. Both are frozen
    (eval mode) while acting, so the two pure functions of the step are memoized (:class:`BatchMemo`):
    the null-filled latent of each token tuple, and the translator's o_t feature of each image frame
    (MiniGrid-like envs revisit frames constantly; hashing a frame takes microseconds, the CNN
    hundreds). The actions are those of ``translator.predict(lam.embed(tokens, k), obs)``, which is
    what ``memoize=False`` computes on every call.
    """

    def __init__(self, lam: FlexLAM | str | Path, translator: Translator | str | Path, prefix_len: int | str,
                 device: str = "cpu", memoize: bool = True, memo_size: int = 4096):
        lam = lam if isinstance(lam, FlexLAM) else FlexLAM.load(lam, device=device)
        translator = translator if isinstance(translator, Translator) else Translator.load(translator, device=device)
        self.adaptive = prefix_len == ADAPTIVE  # the agent picks each step's length: K tokens + a length choice
        self.prefix_len = lam.num_tokens if self.adaptive else check_prefix_len(prefix_len, lam.num_tokens)
        if translator.config.num_tokens != lam.num_tokens or translator.config.latent_dim != lam.latent_dim:
            raise FlexLAMError(
                f"Translator expects latents [K={translator.config.num_tokens}, D={translator.config.latent_dim}] but the "
                f"LAM gives [K={lam.num_tokens}, D={lam.latent_dim}]; use the translator aligned on this LAM."
            )
        check_translator_fits(translator, lam)
        self.lam, self.translator = lam.eval(), translator.eval()
        self.memoize = memoize
        self.latents = BatchMemo(self._embed, memo_size)
        config = translator.config
        images = config.use_obs and len(config.obs_shape or []) == 3
        self.features = BatchMemo(translator.obs_features, memo_size) if images else None

    def action_space(self) -> gym.spaces.MultiDiscrete:
        """``MultiDiscrete([V] * k)``; adaptive: ``MultiDiscrete([V] * K + [K])``, the last entry c meaning length c + 1."""
        return gym.spaces.MultiDiscrete([self.lam.codebook_size] * self.prefix_len + ([self.lam.num_tokens] if self.adaptive else []))

    def check_env_action_space(self, space: gym.Space) -> None:
        check_action_space_fits(self.translator.config.action, space, trained_on(self.lam))

    def validate(self, tokens: Any, batch: int | None = None) -> np.ndarray:
        """Latent actions as int64 ``[k]`` (or ``[batch, k]``; adaptive: ``K + 1`` entries), or a clear error."""
        if self.adaptive:
            return validate_adaptive_action(tokens, self.lam.num_tokens, self.lam.codebook_size, batch)
        return validate_tokens(tokens, self.prefix_len, self.lam.codebook_size, batch)

    def lengths(self, actions: np.ndarray) -> np.ndarray:
        """Tokens each validated action ``[n, ...]`` uses."""
        return actions[:, -1] + 1 if self.adaptive else np.full(len(actions), self.prefix_len)

    def _embed(self, tokens: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(tokens, dtype=torch.long, device=self.lam.device)
        if self.adaptive:  # the same null_fill, at each row's own length
            return self.lam.embed(t[:, : self.prefix_len], t[:, self.prefix_len] + 1)
        return self.lam.embed(t, self.prefix_len)

    @torch.inference_mode()
    def __call__(self, tokens: np.ndarray, obs: np.ndarray | None) -> np.ndarray:
        """Validated tokens ``[n, k]`` (see :meth:`validate`) and o_t ``[n, ...]`` -> env actions ``[n, ...]``."""
        if not self.memoize:
            return self.translator.predict(self._embed(tokens), obs if self.translator.config.use_obs else None)
        latent = self.latents(np.asarray(tokens))
        if not self.translator.config.use_obs:
            return self.translator.predict(latent)
        if self.features is None:  # vector o_t: a small MLP, cheaper than hashing
            return self.translator.predict(latent, obs)
        return self.translator.predict(latent, features=self.features(np.asarray(obs)))


class LatentActionWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Act with ``k`` latent tokens; the translator turns them into the env's real action.

    Args:
        env: a Gymnasium env; raw envs get the LAM's observation preprocessing here.
        lam: a :class:`FlexLAM` or the directory it was saved to.
        translator: a :class:`Translator` (aligned on this LAM) or its directory.
        prefix_len: the token budget k in 1..K.
    """

    def __init__(self, env: gym.Env, lam: FlexLAM | str | Path, translator: Translator | str | Path,
                 prefix_len: int, device: str = "cpu", memoize: bool = True):
        gym.utils.RecordConstructorArgs.__init__(
            self, lam=_spec_arg(lam), translator=_spec_arg(translator), prefix_len=prefix_len, device=device, memoize=memoize
        )
        self._setup(env, LatentTranslation(lam, translator, prefix_len, device, memoize))

    @classmethod
    def sharing(cls, env: gym.Env, translation: LatentTranslation) -> LatentActionWrapper:
        """A wrapper that acts through an existing ``translation`` and keeps its memo: one per (LAM, translator,
        budget) serves every env it is evaluated on."""
        self = cls.__new__(cls)
        gym.utils.RecordConstructorArgs.__init__(self, lam=_spec_arg(translation.lam), translator=_spec_arg(translation.translator),
                                                 prefix_len=ADAPTIVE if translation.adaptive else translation.prefix_len)
        self._setup(env, translation)
        return self

    def _setup(self, env: gym.Env, translation: LatentTranslation) -> None:
        self.translation = translation
        env = match_lam_observations(env, self.translation.lam)
        self.translation.check_env_action_space(env.action_space)
        gym.Wrapper.__init__(self, env)
        self.prefix_len = self.translation.prefix_len
        self.action_space = self.translation.action_space()
        self._last_obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        tokens = self.translation.validate(action)
        obs_batch = None if self._last_obs is None else np.asarray(self._last_obs)[None]
        real = self.translation(tokens[None], obs_batch)[0]
        obs, reward, terminated, truncated, info = self.env.step(self._env_action(real))
        self._last_obs = obs
        info = {**info, "real_action": real, "prefix_len": int(self.translation.lengths(tokens[None])[0])}
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _env_action(self, real: np.ndarray) -> Any:
        return int(real) if isinstance(self.env.action_space, gym.spaces.Discrete) else real


class AdaptiveLatentActionWrapper(LatentActionWrapper):
    """The agent chooses each step's token budget: ``MultiDiscrete([V] * K + [K])``.

    The first K entries are tokens; the last, c, keeps the first c + 1 of them and fills the rest
    with the null latent (the same :func:`~flexlam_rl.model.lam.null_fill` as a fixed budget);
    ``info["prefix_len"]`` says what was used. Put a price on tokens with :class:`TokenCost`.
    """

    def __init__(self, env: gym.Env, lam: FlexLAM | str | Path, translator: Translator | str | Path,
                 device: str = "cpu", memoize: bool = True):
        gym.utils.RecordConstructorArgs.__init__(self, lam=_spec_arg(lam), translator=_spec_arg(translator), device=device,
                                                 memoize=memoize)
        self._setup(env, LatentTranslation(lam, translator, ADAPTIVE, device, memoize))


def check_token_cost(token_cost: Any) -> float:
    """A finite number, or a clear error (the one check of every token-cost wrapper)."""
    if isinstance(token_cost, bool) or not isinstance(token_cost, (int, float)) or not math.isfinite(token_cost):
        raise FlexLAMError(f"token_cost must be a finite number (reward subtracted per token used), got {token_cost!r}.")
    return float(token_cost)


def tokens_used(info: dict[str, Any]) -> Any:
    """``info["prefix_len"]`` (tokens used this step), or a clear error: every token-cost wrapper reads it."""
    if "prefix_len" not in info:
        raise FlexLAMError("TokenCost reads info['prefix_len']: wrap a latent-action env (LatentActionWrapper, "
                           "AdaptiveLatentActionWrapper or their vector forms), not a raw env.")
    return info["prefix_len"]


class TokenCost(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Subtract ``token_cost`` per token used (``info["prefix_len"]``) from each step's reward.

    Meant for :class:`AdaptiveLatentActionWrapper`, where the agent chooses its length: the cost is
    what makes a short code worth choosing. (On a fixed budget it is a constant shift of the reward.)
    """

    def __init__(self, env: gym.Env, token_cost: float):
        gym.utils.RecordConstructorArgs.__init__(self, token_cost=token_cost)
        gym.Wrapper.__init__(self, env)
        self.token_cost = check_token_cost(token_cost)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, float(reward) - self.token_cost * int(tokens_used(info)), terminated, truncated, info


class LatentActionVectorWrapper(gym.vector.VectorWrapper):
    """Gymnasium ``VectorEnv`` form of :class:`LatentActionWrapper` (batched translation).

    Like the single env it reports ``info["prefix_len"]`` (with Gymnasium's ``"_prefix_len"`` mask). Under
    next-step autoreset (Gymnasium's default) the step after an episode ends only resets that sub-env and
    ignores its action: no token cost is charged there, and its ``prefix_len`` is masked out.
    """

    def __init__(self, env: gym.vector.VectorEnv, lam: FlexLAM | str | Path, translator: Translator | str | Path,
                 prefix_len: int | str, device: str = "cpu", memoize: bool = True):
        super().__init__(env)
        self.translation = LatentTranslation(lam, translator, prefix_len, device, memoize)
        self.translation.check_env_action_space(env.single_action_space)
        self.single_action_space = self.translation.action_space()
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, env.num_envs)
        self._last_obs: np.ndarray | None = None
        mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
        self._next_step_autoreset = mode in (gym.vector.AutoresetMode.NEXT_STEP, "NextStep")
        self._resetting = np.zeros(env.num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_obs = obs
        self._resetting = np.zeros(self.num_envs, dtype=bool)
        return obs, info

    def step(self, actions: np.ndarray):
        tokens = self.translation.validate(actions, self.num_envs)
        obs, rewards, terminated, truncated, info = self.env.step(self.translation(tokens, self._last_obs))
        acted = ~self._resetting
        self._resetting = (np.asarray(terminated) | np.asarray(truncated)) & self._next_step_autoreset
        self._last_obs = obs
        info = {**info, "prefix_len": np.where(acted, self.translation.lengths(tokens), 0), "_prefix_len": acted}
        return obs, rewards, terminated, truncated, info


class TokenCostVector(gym.vector.VectorWrapper):
    """The vector form of :class:`TokenCost`: ``token_cost * info["prefix_len"]`` off each sub-env's reward
    (0 tokens, so no cost, on the autoreset steps where a sub-env's action was ignored)."""

    def __init__(self, env: gym.vector.VectorEnv, token_cost: float):
        super().__init__(env)
        self.token_cost = check_token_cost(token_cost)

    def step(self, actions: np.ndarray):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        return obs, rewards - self.token_cost * np.asarray(tokens_used(info)), terminated, truncated, info


def make_latent_env(
    env_id: str, lam: str, translator: str, prefix_len: int | str, device: str = "cpu",
    env_kwargs: dict[str, Any] | None = None, render_mode: str | None = None, token_cost: float = 0.0,
) -> gym.Env:
    """Entry point of ``flexlam/LatentAction-v0``: a task name or Gymnasium id + checkpoint paths
    (``prefix_len="adaptive"``: an :class:`AdaptiveLatentActionWrapper` with ``token_cost``)."""
    lam_model = FlexLAM.load(lam, device=device)
    env = lam_env(env_id, lam_model, render_mode, env_kwargs)
    if prefix_len == ADAPTIVE:
        adaptive = AdaptiveLatentActionWrapper(env, lam_model, translator, device=device)
        return TokenCost(adaptive, token_cost) if token_cost else adaptive
    if token_cost:
        raise FlexLAMError("token_cost applies when the agent chooses its length (prefix_len='adaptive'); a fixed "
                           "budget uses the same number of tokens every step.")
    return LatentActionWrapper(env, lam_model, translator, prefix_len, device=device)


def register_latent_env(env_id: str, base_env: str, lam: str | Path, translator: str | Path, prefix_len: int | str,
                        max_episode_steps: int | None = None, **kwargs: Any) -> str:
    """Register a latent-action id with fixed checkpoints and budget: ``gym.make(env_id)`` then works anywhere."""
    budget = prefix_len if prefix_len == ADAPTIVE else int(prefix_len)
    gym.register(
        env_id, entry_point="flexlam_rl.act.wrappers:make_latent_env", max_episode_steps=max_episode_steps,
        kwargs={"env_id": base_env, "lam": str(lam), "translator": str(translator), "prefix_len": budget, **kwargs},
    )
    return env_id
