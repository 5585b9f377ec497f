"""SB3 agents acting in latent-action space (or in the raw action space, as the reference).

Read top to bottom: build the vectorized env (the task's preprocessed sub-envs, then the
batched :class:`~flexlam_rl.act.wrappers.LatentActionVecEnv`), build PPO/A2C, learn with an
EvalCallback and TensorBoard, save the SB3 zip, write a GIF of one evaluation episode.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flexlam_rl.checkpoint import atomic_path, atomic_write_json
from flexlam_rl.config import check_int, check_optional_positive_int, check_positive_ints, is_int
from flexlam_rl.errors import ConfigError
from flexlam_rl.media import write_gif
from flexlam_rl.pretrain.runs import default_translator_dir

ALGOS = ("ppo", "a2c")
SPACES = ("latent", "raw")
EVAL_SEED_OFFSET = 10_000  # the eval env's seed is seed + this: its episodes never repeat the training envs' starts
PPO_DEFAULTS = {"n_steps": 128, "batch_size": 256, "n_epochs": 4, "ent_coef": 0.01, "learning_rate": 2.5e-4}


@dataclass
class AgentConfig:
    """Which agent learns where; ``algo_kwargs`` go straight to the SB3 constructor."""

    env: str = "minigrid-doorkey"
    space: str = "latent"  # latent | raw
    algo: str = "ppo"  # ppo | a2c
    lam_dir: str | None = None  # LAM directory (latent space only)
    translator_dir: str | None = None  # translator directory (default: <lam_dir>/../translator)
    prefix_len: int | str = 2  # 1..K, or "adaptive": the agent chooses each step's length too
    init_from: str | None = None  # a latent BC folder: fine-tune it on real actions, the translator as its action head
    token_cost: float = 0.0  # adaptive only: reward subtracted per token used
    total_timesteps: int = 20_000
    n_envs: int = 8
    seed: int = 0
    eval_freq: int = 2_000  # env steps between evaluations (summed over sub-envs)
    eval_episodes: int = 10
    max_episode_steps: int | None = None  # training and evaluation episodes (None: the task's own limit)
    frame_size: int | None = None  # raw space only: the task's pixel frame size (latent space uses the LAM's preprocessing)
    frame_stack: int = 4  # frames the policy reads (image observations; SB3's VecFrameStack); init_from: the policy's own
    policy: str = "auto"  # auto: CnnPolicy for pixels (a small CNN below 36 px), MlpPolicy for vectors
    device: str = "auto"
    progress_bar: bool = True
    gif: bool = True
    algo_kwargs: dict[str, Any] | None = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.algo_kwargs = dict(self.algo_kwargs or {})
        if self.space not in SPACES:
            raise ConfigError(f"agent.space must be one of {SPACES}, got {self.space!r}.")
        if self.algo not in ALGOS:
            raise ConfigError(f"agent.algo must be one of {ALGOS}, got {self.algo!r} (DQN needs Discrete, SAC/TD3 need Box).")
        if self.space == "latent" and not self.lam_dir:
            raise ConfigError("agent.space=latent needs agent.lam_dir=<LAM directory> (and a translator aligned on it).")
        check_positive_ints("agent", self, ("total_timesteps", "n_envs", "eval_freq", "eval_episodes"))
        if self.prefix_len != "adaptive" and not (is_int(self.prefix_len) and self.prefix_len >= 1):
            raise ConfigError(f"agent.prefix_len must be a token budget (1..K) or 'adaptive', got {self.prefix_len!r}.")
        if self.token_cost and self.prefix_len != "adaptive":
            raise ConfigError("agent.token_cost needs agent.prefix_len=adaptive (a fixed budget uses the same tokens every step).")
        check_optional_positive_int("agent.max_episode_steps", self.max_episode_steps, "the task's own limit")
        check_int("agent.frame_stack", self.frame_stack, 1, 16)
        if self.init_from and (self.space != "latent" or self.prefix_len == "adaptive" or self.algo != "ppo"):
            raise ConfigError("agent.init_from fine-tunes a latent BC policy with PPO at a fixed budget: it needs agent.space=latent, "
                              "agent.algo=ppo and an integer agent.prefix_len.")

    @property
    def translator_path(self) -> str:
        return self.translator_dir or str(default_translator_dir(self.lam_dir))

    def check_lam(self) -> None:
        """Refuse a translator aligned on another LAM, a budget the LAM does not have, or a latent BC policy made for
        another LAM or frame shape, before any env is built (reads checkpoints only)."""
        if self.space != "latent":
            return
        from flexlam_rl.act.wrappers import check_translator_fits
        from flexlam_rl.align import Translator
        from flexlam_rl.checkpoint import read_json
        from flexlam_rl.model.lam import FlexLAM

        lam = FlexLAM.load(self.lam_dir)
        check_translator_fits(Translator.load(self.translator_path), lam)
        if self.prefix_len == "adaptive":
            return
        record = read_json(Path(self.lam_dir) / "config.json", "LAM config")
        k = int(record.get("config", record).get("num_tokens", 0))
        if not 1 <= int(self.prefix_len) <= k:
            raise ConfigError(f"agent.prefix_len={self.prefix_len} is outside 1..{k}: the LAM at {self.lam_dir} has K = {k} tokens.")
        if self.init_from:
            from .finetune import check_init_from

            self.frame_stack = int(check_init_from(self.init_from, lam, self.translator_path).get("frame_stack", 1))


@dataclass
class AgentResult:
    run_dir: Path
    model_path: Path
    gif_path: Path | None
    eval_mean_return: float
    eval_returns: list[float]
    train_return: float  # mean return of the last 20 training episodes (stochastic policy)
    curve: list[tuple[int, float]]  # (timesteps, mean eval return)
    eval_mean_prefix_len: float | None = None  # tokens per step in the evaluation episodes (latent space)
    baselines: dict[str, Any] | None = None  # random actions and the scripted expert on the evaluation env's settings
    normalized: float | None = None  # (eval return - random) / (expert - random); None without an expert


def agent_baselines(cfg: AgentConfig):
    """Random actions and the task's scripted expert over ``eval_episodes`` episodes of the evaluation env's base (the
    LAM's frames or the task's, real actions, the same step cap): what the agent's return is read against."""
    from flexlam_rl.act.baselines import baseline_returns
    from flexlam_rl.act.wrappers import lam_env
    from flexlam_rl.envs import task_at_frame_size
    from flexlam_rl.model.lam import FlexLAM

    if cfg.space == "latent":
        env = lam_env(cfg.env, FlexLAM.load(cfg.lam_dir), max_episode_steps=cfg.max_episode_steps)
    else:
        env = task_at_frame_size(cfg.env, cfg.frame_size).make(max_episode_steps=cfg.max_episode_steps)
    with env:
        return baseline_returns(env, cfg.env, cfg.eval_episodes, cfg.seed + EVAL_SEED_OFFSET, max_episode_steps=cfg.max_episode_steps)


def make_vec_env(cfg: AgentConfig, n_envs: int, seed: int, training: bool = False):
    """Sub-envs of the task: in latent space seen as the LAM sees them (its recorded preprocessing) and
    wrapped for latent actions (with ``init_from``: the LAM's frames, real actions); in the raw action space,
    the task's own preprocessed env. ``training``: a lost life ends an Atari episode (above the Monitor, which
    records whole games). Image observations reach the policy as a stack of ``frame_stack`` frames."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.preprocessing import is_image_space
    from stable_baselines3.common.vec_env import VecFrameStack, VecTransposeImage

    from flexlam_rl.act.wrappers import lam_env
    from flexlam_rl.envs import task_at_frame_size
    from flexlam_rl.envs.pixels import end_episodes_on_life_loss
    from flexlam_rl.model.lam import FlexLAM

    from .vec_env import LatentActionVecEnv, VecTokenCost

    wrapper = end_episodes_on_life_loss if training else None
    if cfg.space == "latent":
        lam = FlexLAM.load(cfg.lam_dir)
        venv = sb3_make_vec_env(lambda: lam_env(cfg.env, lam, max_episode_steps=cfg.max_episode_steps), n_envs=n_envs, seed=seed,
                                wrapper_class=wrapper)
        if not cfg.init_from:
            venv = LatentActionVecEnv(venv, lam, cfg.translator_path, cfg.prefix_len)
        if cfg.token_cost:
            venv = VecTokenCost(venv, cfg.token_cost)
    else:
        task = task_at_frame_size(cfg.env, cfg.frame_size)
        venv = sb3_make_vec_env(lambda: task.make(max_episode_steps=cfg.max_episode_steps), n_envs=n_envs, seed=seed,
                                wrapper_class=wrapper)
    if is_image_space(venv.observation_space):
        if cfg.frame_stack > 1:  # stacked above the latent actions: the translator reads single frames
            venv = VecFrameStack(venv, cfg.frame_stack, channels_order="last")
        venv = VecTransposeImage(venv)  # channel-first for SB3's CNN (done here so eval env matches)
    return venv


def train_agent(cfg: AgentConfig, run_dir: str | Path) -> AgentResult:
    """Learn for ``total_timesteps`` with periodic evaluation; save model, curve and a GIF."""
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import EvalCallback

    from .networks import policy_for

    cfg.check_lam()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_env = make_vec_env(cfg, cfg.n_envs, cfg.seed, training=True)
    eval_env = make_vec_env(cfg, 1, cfg.seed + EVAL_SEED_OFFSET)
    policy, policy_kwargs = policy_for(train_env.observation_space)
    if cfg.policy != "auto":
        policy, policy_kwargs = cfg.policy, {}
    if cfg.init_from:
        from .finetune import LatentBCActorCritic

        policy, policy_kwargs = LatentBCActorCritic, {"init_from": str(cfg.init_from), "lam_dir": str(cfg.lam_dir),
                                                       "translator_dir": cfg.translator_path, "prefix_len": int(cfg.prefix_len)}
    algo_cls = {"ppo": PPO, "a2c": A2C}[cfg.algo]
    kwargs = {**(PPO_DEFAULTS if cfg.algo == "ppo" else {}), **cfg.algo_kwargs}
    if policy_kwargs:
        kwargs.setdefault("policy_kwargs", policy_kwargs)
    model = algo_cls(policy, train_env, seed=cfg.seed, device=cfg.device, tensorboard_log=str(run_dir / "tb"), verbose=0, **kwargs)
    callback = EvalCallback(
        eval_env, eval_freq=max(1, cfg.eval_freq // cfg.n_envs), n_eval_episodes=cfg.eval_episodes,
        best_model_save_path=str(run_dir / "best"), log_path=str(run_dir / "eval"), deterministic=True, verbose=0,
    )
    model.learn(total_timesteps=cfg.total_timesteps, callback=callback, progress_bar=cfg.progress_bar,
                tb_log_name=f"{cfg.algo}_{cfg.space}")
    model_path = run_dir / "model.zip"
    with atomic_path(model_path, suffix=".tmp.zip") as tmp:  # SB3's own format, written atomically
        model.save(tmp)

    episodes = [float(info["r"]) for info in model.ep_info_buffer]
    train_return = float(np.mean(episodes[-20:])) if episodes else float("nan")
    curve = _eval_curve(run_dir / "eval" / "evaluations.npz")
    frames: list[np.ndarray] = []
    lengths: list[int] = []
    returns = _evaluate(model, eval_env, cfg.eval_episodes, frames, lengths)
    gif_path = write_gif(frames, run_dir / "eval_episode.gif") if cfg.gif else None
    mean_length = float(np.mean(lengths)) if lengths else None
    baselines = agent_baselines(cfg)
    result = AgentResult(run_dir, model_path, gif_path, float(np.mean(returns)), returns, train_return, curve, mean_length,
                         baselines.to_dict(), baselines.normalized(float(np.mean(returns))))
    summary = {"config": asdict(cfg), "eval_mean_return": result.eval_mean_return, "eval_returns": returns,
               "baselines": result.baselines, "normalized": result.normalized, "eval_mean_prefix_len": mean_length,
               "train_return_last20": train_return,
               "curve": curve, "model": str(model_path), "gif": str(gif_path) if gif_path else None}
    atomic_write_json(run_dir / "agent_metrics.json", json.loads(json.dumps(summary, default=_json_value)))
    train_env.close()
    eval_env.close()
    return result


def _json_value(value: Any) -> Any:
    """What the metrics file records of a value JSON cannot hold: a class (a policy's feature extractor, say) by its
    import path, numbers as floats."""
    return f"{value.__module__}.{value.__qualname__}" if isinstance(value, type) else float(value)


def _evaluate(model: Any, env: Any, episodes: int, frames: list[np.ndarray], lengths: list[int]) -> list[float]:
    """Deterministic episodes on the (single, Monitor-wrapped) eval env with SB3's ``evaluate_policy``: the
    task's returns (Monitor sits below any token cost). The first episode's observations go to ``frames``,
    every step's token count (latent space) to ``lengths``."""
    from stable_baselines3.common.evaluation import evaluate_policy

    def record(local: dict[str, Any], _: dict[str, Any]) -> None:
        if "prefix_len" in local["info"]:
            lengths.append(local["info"]["prefix_len"])
        if local["episode_counts"][0] == 0:
            frames.append(_frame(local["observations"]))
            if local["done"] and "terminal_observation" in local["info"]:
                frames.append(_frame(local["info"]["terminal_observation"][None]))

    returns, _ = evaluate_policy(model, env, n_eval_episodes=episodes, deterministic=True, callback=record,
                                 return_episode_rewards=True)
    return [float(r) for r in returns]


def _frame(obs: np.ndarray) -> np.ndarray:
    frame = np.asarray(obs[0])
    if frame.ndim == 3 and frame.shape[0] <= 16 < frame.shape[-1]:  # channels first (VecTransposeImage): back to HWC
        frame = frame.transpose(1, 2, 0)
    return frame


def _eval_curve(npz_path: Path) -> list[tuple[int, float]]:
    if not npz_path.is_file():
        return []
    data = np.load(npz_path, allow_pickle=False)  # SB3's numeric log: timesteps, results
    return [(int(t), float(np.mean(r))) for t, r in zip(data["timesteps"], data["results"])]
