"""Latent behaviour cloning ("latent-token evaluator"): o_t -> the tokens the IDM assigns.

Trained on action-free expert data: the targets are ``lam.encode(o_t, o_t+1)``, never the
actions. At budget k the policy's first k tokens go through the LAM's null-filled prefix
and the translator (via :class:`~flexlam_rl.act.wrappers.LatentActionWrapper`), and the
policy is scored by its mean episode return in the env. One policy predicts all K slots,
so a FlexLAM is evaluated at every budget with the same policy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from ..align import Translator
from ..config import Episodes, check_int, check_positive_ints, parse_config
from ..data.transitions import TransitionSet, eval_batches, split_off_episodes
from ..envs.pixels import stack_frames
from ..errors import ConfigError, DataError
from ..fit import FitConfig, Validation, chunked_mean, fit, seeded
from ..metrics import standard_error
from ..model.budgets import check_prefix_len
from ..model.lam import FlexLAM
from ..model.nets import ObservationInput, feature_encoder
from ..model.quantize import FSQ
from ..pretrain.plateau import window_change

HEADS = ("autoregressive", "regress", "independent")


def stacked_shape(obs_shape: Sequence[int], frame_stack: int) -> list[int]:
    """What a policy's network reads: ``[H, W, frame_stack * C]`` for frames, the observation itself for vectors."""
    if len(obs_shape) != 3:
        return list(obs_shape)
    return [*obs_shape[:2], obs_shape[2] * frame_stack]


@dataclass
class LatentBCConfig:
    """A latent BC policy's shapes. ``head``: how the K tokens are predicted. ``autoregressive`` classifies slot by
    slot, each given the tokens chosen before it, so the greedy code is one likely code, never a mix of the modes
    of separate slots; ``regress`` predicts each slot's value before quantization (as LAPO regresses its latent)
    and rounds it to the code grid (a mean: between two modes it lands on neither); ``independent`` classifies each
    slot on its own (its argmaxes can combine into codes no transition had). ``frame_stack``: the policy reads
    o_t with the frames before it (image observations)."""

    obs_shape: list[int]  # one observation as the LAM reads it
    num_tokens: int
    codebook_size: int
    channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    hidden_dim: int = 256
    adaptive: bool = False  # also predict each step's length (targets cut to adaptive_prefix_len)
    head: str = "independent"  # what every policy saved before the joint head was
    frame_stack: int = 1
    fsq_levels: list[int] | None = None  # regress: the LAM's FSQ levels (values -> tokens)

    def __post_init__(self) -> None:
        if not isinstance(self.obs_shape, list) or len(self.obs_shape) not in (1, 3):
            raise ConfigError(f"obs_shape must be [H, W, C] or [D], got {self.obs_shape!r}.")
        for s in self.obs_shape:
            check_int("obs_shape entry", s, 1, 4096)
        check_int("num_tokens", self.num_tokens, 1, 64)
        check_int("codebook_size", self.codebook_size, 2, 65536)
        check_int("hidden_dim", self.hidden_dim, 1, 16384)
        check_int("frame_stack", self.frame_stack, 1, 16)
        if self.head not in HEADS:
            raise ConfigError(f"latent BC head must be one of {HEADS}, got {self.head!r}.")
        if self.head != "independent" and not self.fsq_levels:
            raise ConfigError(f"head={self.head} needs the LAM's fsq_levels (their product is codebook_size).")
        if self.fsq_levels and math.prod(self.fsq_levels) != self.codebook_size:
            raise ConfigError(f"fsq_levels {self.fsq_levels} do not give codebook_size {self.codebook_size}; use the LAM's.")
        if self.adaptive and self.head != "independent":
            raise ConfigError("An adaptive latent BC policy (a length head) uses head=independent.")
        if self.frame_stack > 1 and len(self.obs_shape) != 3:
            raise ConfigError(f"frame_stack={self.frame_stack} stacks image frames; these observations are vectors {self.obs_shape}.")

    @property
    def input_shape(self) -> list[int]:
        return stacked_shape(self.obs_shape, self.frame_stack)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatentBCConfig:
        return parse_config(cls, data, "latent BC config")


class LatentBCPolicy(ObservationInput):
    """Observations (``[B, *input_shape]``) -> the LAM's tokens ``[B, K]``, by its ``head``.

    ``forward`` gives the head's outputs along its greedy choice: token logits ``[B, K, V]`` (``independent``;
    ``autoregressive``: each slot's logits given the greedy tokens before it) or slot values on the code grid
    ``[B, K, L]`` (``regress``). :meth:`codes` gives the chosen codes with a straight-through gradient: what a
    fine-tuned policy feeds the LAM's embedding and the translator.
    """

    def __init__(self, config: LatentBCConfig):
        super().__init__()
        self.config = config
        hidden, slots, vocab = config.hidden_dim, config.num_tokens, config.codebook_size
        self.encoder = feature_encoder(config.input_shape, config.channels, hidden)
        self.quantizer = FSQ(config.fsq_levels) if config.fsq_levels else None
        if config.head == "autoregressive":  # a GRU over the slots: slot i reads the tokens before it
            self.start = torch.nn.Parameter(torch.zeros(hidden))
            self.token_embed = torch.nn.Embedding(vocab, hidden)
            self.rnn = torch.nn.GRUCell(hidden, hidden)
            self.head = torch.nn.Linear(hidden, vocab)
        else:
            per_slot = self.quantizer.dim if config.head == "regress" else vocab
            self.head = torch.nn.Linear(hidden, slots * per_slot)
        self.length_head = torch.nn.Linear(hidden, slots) if config.adaptive else None
        self._init_obs_input(config.input_shape)

    def features(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The encoder's features ``[B, hidden_dim]`` (what a fine-tuned policy's value head shares)."""
        return self.encoder(self.obs_input(obs))

    def forward(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Head outputs along the greedy choice (see the class docstring)."""
        return self.outputs(self.features(obs))[0]

    def logits(self, obs: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`forward` and, for an adaptive policy, length logits ``[B, K]`` (class c: length c + 1)."""
        return self.outputs(self.features(obs))

    def outputs(self, features: torch.Tensor, tokens: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Head outputs from features; an autoregressive head reads ``tokens`` ``[B, K]`` as the slots before each
        (teacher forcing), or its own greedy choices when None."""
        length = self.length_head(features) if self.length_head is not None else None
        if self.config.head != "autoregressive":
            return self.head(features).view(features.shape[0], self.config.num_tokens, -1), length
        state, step_input, out = features, self.start.expand_as(features), []
        for slot in range(self.config.num_tokens):
            state = self.rnn(step_input, state)
            out.append(self.head(state))
            chosen = out[-1].argmax(-1) if tokens is None else tokens[:, slot]
            step_input = self.token_embed(chosen)
        return torch.stack(out, dim=1), length

    def tokens_from(self, out: torch.Tensor) -> torch.Tensor:
        """Head outputs -> greedy tokens ``[B, K]``: the argmaxes, or the regressed values rounded to the grid."""
        return self.quantizer.values_to_indices(out) if self.config.head == "regress" else out.argmax(-1)

    def codes(self, features: torch.Tensor) -> torch.Tensor:
        """The greedy tokens' codes in [-1, 1] ``[B, K, L]``, with a straight-through gradient to the head (through
        the rounding of a regressed value, or a one-hot of the argmax against the softmax)."""
        if self.quantizer is None:
            raise ConfigError("This latent BC policy records no FSQ levels (saved before fine-tuning existed); train it again.")
        out = self.outputs(features)[0]
        if self.config.head == "regress":
            return self.quantizer.snap(out)
        probs = out.softmax(-1)
        hard = F.one_hot(out.argmax(-1), self.config.codebook_size).to(probs.dtype)
        table = self.quantizer.indices_to_codes(torch.arange(self.config.codebook_size, device=out.device))  # [V, L]
        return (hard + probs - probs.detach()) @ table

    def loss(self, obs: np.ndarray, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the IDM's tokens ``[B, K]`` (independent, autoregressive) or MSE on its values
        ``[B, K, L]`` (regress)."""
        features = self.features(obs)
        if self.config.head == "regress":
            return F.mse_loss(self.outputs(features)[0], targets)
        out = self.outputs(features, tokens=targets)[0]
        return F.cross_entropy(out.reshape(-1, self.config.codebook_size), targets.reshape(-1))

    @torch.no_grad()
    def act(self, obs: np.ndarray, prefix_len: int) -> np.ndarray:
        """Greedy tokens ``[B, k]`` for budget k (the first k slots)."""
        k = check_prefix_len(prefix_len, self.config.num_tokens)
        return self.tokens_from(self(obs))[:, :k].cpu().numpy()

    @torch.no_grad()
    def act_adaptive(self, obs: np.ndarray) -> np.ndarray:
        """Greedy ``[B, K + 1]``: K tokens, then the length choice (an
        :class:`~flexlam_rl.act.wrappers.AdaptiveLatentActionWrapper` action)."""
        logits, length = self.logits(obs)
        if length is None:
            raise ConfigError("This latent BC policy was trained for fixed budgets; train one with an adaptive tol to act adaptively.")
        return torch.cat([logits.argmax(-1), length.argmax(-1, keepdim=True)], dim=1).cpu().numpy()

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        from ..checkpoint import save_module

        return save_module(self, path, kind="latent_bc", config=asdict(self.config), extra=extra)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> LatentBCPolicy:
        from ..checkpoint import load_module

        return load_module(path, kind="latent_bc", build=lambda c: cls(LatentBCConfig.from_dict(c)), device=device)


@dataclass
class LatentBCTrainConfig(FitConfig):
    """Latent BC training (the Hydra ``bc`` group): ``steps`` is the most updates; with ``until_plateau`` training
    stops when the loss on held-out expert episodes (``validation_fraction`` of them) stops falling (the LAM's
    window rule, :func:`~flexlam_rl.pretrain.plateau.window_change`, read every ``check_every`` updates) and keeps the
    weights of its lowest check."""

    steps: int = 20_000
    batch_size: int = 64
    head: str = "autoregressive"
    frame_stack: int = 4  # image observations; vectors are read one at a time
    until_plateau: bool = True
    validation_fraction: float = 0.1
    check_every: int = 100
    plateau_window: int = 5
    plateau_tol: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.head not in HEADS:
            raise ConfigError(f"bc.head must be one of {HEADS}, got {self.head!r}.")
        check_int("bc.frame_stack", self.frame_stack, 1, 16)
        check_positive_ints("bc", self, ("check_every", "plateau_window"))
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError(f"bc.validation_fraction must be in [0, 1), got {self.validation_fraction}.")
        if self.until_plateau and self.validation_fraction == 0.0:
            raise ConfigError("bc.until_plateau needs held-out expert episodes: set bc.validation_fraction > 0 (e.g. 0.1).")

    def policy_stack(self, obs_shape: Sequence[int]) -> int:
        """The frame stack a policy of these settings reads: ``frame_stack`` for frames, 1 for vectors."""
        return self.frame_stack if len(obs_shape) == 3 else 1


@torch.no_grad()
def token_targets(lam: FlexLAM, data: TransitionSet, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """All transitions' o_t and the IDM's tokens for them: ``([N, ...], [N, K])``."""
    batch = data.__getitems__(np.arange(len(data)))
    return batch["obs"], lam.encode_many(batch["obs"], batch["next_obs"], batch_size).numpy()


@torch.no_grad()
def value_targets(lam: FlexLAM, data: TransitionSet) -> torch.Tensor:
    """Every transition's slot values before rounding (:meth:`~flexlam_rl.model.lam.FlexLAM.encode_values`): ``[N, K, L]``."""
    parts = [lam.encode_values(batch["obs"], batch["next_obs"]).cpu() for batch in eval_batches(data, lam.eval_rows())]
    return torch.cat(parts)


@torch.no_grad()
def adaptive_targets(lam: FlexLAM, data: TransitionSet, tol: float, batch_size: int = 256) -> np.ndarray:
    """Each transition's adaptive length (:meth:`~flexlam_rl.model.lam.FlexLAM.adaptive_prefix_len`): ``[N]`` in 1..K."""
    return np.concatenate([lam.adaptive_prefix_len(batch["obs"], batch["next_obs"], tol).cpu().numpy()
                           for batch in eval_batches(data, batch_size)])


def expert_split(expert: TransitionSet, cfg: LatentBCTrainConfig) -> tuple[TransitionSet, TransitionSet | None]:
    """Training and validation episodes of the expert data (validation: ``validation_fraction`` of each dataset's
    episodes, at least one of two or more; of all of them together where every dataset has one; none with
    ``until_plateau`` off)."""
    if not cfg.until_plateau:
        return expert, None
    kept, held = split_off_episodes(expert.episodes, expert.sources, cfg.validation_fraction, [cfg.seed, 2])
    if not held and len(expert.episodes) >= 2:  # every dataset has one episode: hold out from all of them together
        order = np.random.default_rng([cfg.seed, 2]).permutation(len(expert.episodes))
        take = set(order[: max(1, int(math.ceil(cfg.validation_fraction * len(order))))].tolist())
        kept = [e for i, e in enumerate(expert.episodes) if i not in take]
        held = [e for i, e in enumerate(expert.episodes) if i in take]
    if not held:
        raise DataError(f"bc.until_plateau holds out expert episodes to know when to stop, but the expert data has "
                        f"{len(expert.episodes)} episode(s); collect at least 2, or set bc.until_plateau=false.")
    return expert.subset_episodes(kept), expert.subset_episodes(held)


def plateau_stop(cfg: LatentBCTrainConfig) -> Callable[[list[float]], bool] | None:
    """The stop rule :func:`~flexlam_rl.fit.fit` reads after each validation check (None: train every step)."""
    if not cfg.until_plateau:
        return None

    def stop(losses: list[float]) -> bool:
        change = window_change(losses, cfg.plateau_window)
        return change is not None and change > -cfg.plateau_tol

    return stop


def train_latent_bc(lam: FlexLAM, expert: TransitionSet, cfg: LatentBCTrainConfig, tol: float | None = None,
                    record: dict[str, Any] | None = None) -> LatentBCPolicy:
    """Clone the IDM's tokens on action-free expert transitions (actions are never read).

    ``tol``: an adaptive policy instead (head ``independent``). Its targets are the tokens cut to each transition's
    adaptive length (slots past it carry no loss) plus that length, a K-way head. ``record`` (a dict) receives the
    updates trained, whether the validation loss plateaued and its best value.
    """
    if len(expert) == 0:
        raise DataError("No expert transitions to clone; collect an expert dataset first (flexlam-collect behaviour=expert).")
    head = "independent" if tol is not None else cfg.head
    train, validation = expert_split(expert, cfg)
    stack = cfg.policy_stack(lam.config.obs_shape)
    with seeded(cfg.seed):
        policy = LatentBCPolicy(LatentBCConfig(list(lam.config.obs_shape), lam.num_tokens, lam.codebook_size,
                                               list(lam.config.channels), lam.config.hidden_dim, adaptive=tol is not None,
                                               head=head, frame_stack=stack, fsq_levels=list(lam.config.fsq_levels)))
    policy.copy_obs_stats(lam)

    def targets_of(data: TransitionSet) -> tuple[np.ndarray, torch.Tensor]:
        obs = data.stacked_obs(np.arange(len(data)), stack)
        if head == "regress":
            return obs, value_targets(lam, data)
        return obs, lam.encode_set(data, batch_size=256)

    obs, targets = targets_of(train)
    lengths = torch.as_tensor(adaptive_targets(lam, train, tol)) if tol is not None else None
    slots = torch.arange(lam.num_tokens)

    def batch_loss(idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if lengths is None:
            return policy.loss(obs[idx.numpy()], targets[idx])
        logits, length_logits = policy.logits(obs[idx.numpy()])
        per_slot = F.cross_entropy(logits.reshape(-1, lam.codebook_size), targets[idx].reshape(-1), reduction="none")
        keep = (slots[None, :] < lengths[idx][:, None]).reshape(-1).float()  # only the slots the length keeps
        return (per_slot * keep).sum() / keep.sum() + F.cross_entropy(length_logits, lengths[idx] - 1)

    check = None
    if validation is not None:
        val_obs, val_targets = targets_of(validation)

        def validation_loss() -> float:  # tokens' loss only: the length head of an adaptive policy is not the plateau's
            return chunked_mean(lambda rows: policy.loss(val_obs[rows], val_targets[rows]), len(val_obs))

        check = Validation(validation_loss, cfg.check_every, plateau_stop(cfg))
    return fit(policy, batch_loss, len(obs), cfg, check, record=record)


# ----------------------------------------------------------------------- scoring
def rollout_returns(env: gym.Env, act: Callable[[np.ndarray], Any], episodes: int, seed: int,
                    frames: list[np.ndarray] | None = None) -> list[float]:
    """Undiscounted returns of ``act`` over ``episodes`` episodes (reset seeds ``seed + i``).

    Every method sees the same episodes (same start states), which is what pairs their scores;
    SB3's ``evaluate_policy`` seeds a vector env once and cannot promise that. When ``frames``
    is given, the observations of the first episode are appended to it (a stack's GIF shows its newest frame:
    :func:`~flexlam_rl.media.rgb_frame`).
    """
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total, done = 0.0, False
        record = frames is not None and i == 0
        if record:
            frames.append(np.asarray(obs))
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            done = terminated or truncated
            if record:
                frames.append(np.asarray(obs))
        returns.append(total)
    return returns


def latent_env(env: str | gym.Env, lam: FlexLAM, translator: Translator, prefix_len: int,
               translations: dict[int, Any] | None = None, max_episode_steps: int | None = None) -> gym.Env:
    """A task or Gymnasium id, seen as ``lam`` sees it, acting through ``lam`` + ``translator`` at budget k.

    ``env`` may also be an env :func:`~flexlam_rl.act.wrappers.lam_env` made (then ``max_episode_steps`` is its own):
    several budgets can share it, and its construction (a ROM load on Atari) is paid once.
    ``translations`` (budget -> :class:`~flexlam_rl.act.wrappers.LatentTranslation`, filled here) lets the envs of
    several tasks share one translation and its memo per budget; the caller keeps one dict per (LAM, translator).
    """
    from .wrappers import LatentActionWrapper, LatentTranslation, lam_env

    raw = env if isinstance(env, gym.Env) else lam_env(env, lam, max_episode_steps=max_episode_steps)
    if translations is None:
        return LatentActionWrapper(raw, lam, translator, prefix_len)
    if prefix_len not in translations:
        translations[prefix_len] = LatentTranslation(lam, translator, prefix_len)
    return LatentActionWrapper.sharing(raw, translations[prefix_len])


def evaluate_latent_bc(
    policy: LatentBCPolicy, lam: FlexLAM, translator: Translator, env: str, budgets: Sequence[int], episodes: Episodes, *,
    gif_frames: dict[int, list[np.ndarray]] | None = None, translations: dict[int, Any] | None = None,
) -> dict[int, dict[str, float]]:
    """Mean and standard error of the return at each budget on task ``env`` over ``episodes``.

    With ``gif_frames``, each budget's first episode is recorded into ``gif_frames[k]``; ``translations``: see
    :func:`latent_env` (evaluating one translator on several tasks).
    """
    from .wrappers import lam_env

    budgets = [check_prefix_len(k, policy.config.num_tokens) for k in budgets]
    out = {}
    # one env for every budget: each episode resets it with its own seed, so budgets still see the same episodes
    with lam_env(env, lam, max_episode_steps=episodes.max_steps) as raw:
        for k in budgets:
            frames = None if gif_frames is None else gif_frames.setdefault(k, [])
            # not closed: that would close ``raw``; the policy reads a frame stack, the translator single frames
            wrapped = stack_frames(latent_env(raw, lam, translator, k, translations), policy.config.frame_stack)
            returns = rollout_returns(wrapped, lambda o, k=k: policy.act(np.asarray(o)[None], k)[0], episodes.count,
                                      episodes.seed, frames)
            out[k] = {"mean": float(np.mean(returns)), "stderr": standard_error(returns)}
    return out


def evaluate_adaptive_latent_bc(policy: LatentBCPolicy, lam: FlexLAM, translator: Translator, env: str,
                                episodes: Episodes) -> dict[str, float]:
    """Mean and standard error of the return of an adaptive policy, and the tokens it used per step."""
    from .wrappers import AdaptiveLatentActionWrapper, lam_env

    used: list[int] = []

    def act(obs: np.ndarray) -> np.ndarray:
        action = policy.act_adaptive(np.asarray(obs)[None])[0]
        used.append(int(action[-1]) + 1)
        return action

    with stack_frames(AdaptiveLatentActionWrapper(lam_env(env, lam, max_episode_steps=episodes.max_steps), lam, translator),
                      policy.config.frame_stack) as wrapped:
        returns = rollout_returns(wrapped, act, episodes.count, episodes.seed)
    return {"mean": float(np.mean(returns)), "stderr": standard_error(returns),
            "mean_tokens": float(np.mean(used))}


def random_returns(env: str, episodes: int, seed: int, frame_size: int | None = None,
                   max_episode_steps: int | None = None) -> list[float]:
    """Returns of uniformly random real actions: the floor latent BC is compared with (under the same step cap)."""
    from ..envs import task_at_frame_size

    with task_at_frame_size(env, frame_size).make(max_episode_steps) as raw:
        raw.action_space.seed(seed)
        return rollout_returns(raw, lambda obs: raw.action_space.sample(), episodes, seed)
