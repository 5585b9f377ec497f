"""``flexlam-latent-bc``: latent behaviour cloning scored by return at every budget, vs random."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig

from ..align import Translator
from ..checkpoint import atomic_write_json
from ..data import load_transitions
from ..envs import get_task
from ..latent_bc import LatentBCTrainConfig, evaluate_latent_bc, rollout_returns, train_latent_bc
from ..media import write_gif
from ..model import FlexLAM
from ..wrappers import LatentActionWrapper
from ._common import CONFIG_PATH, clean_errors, dataclass_from


def random_returns(env_name: str, episodes: int, seed: int) -> list[float]:
    env = get_task(env_name).make()
    env.action_space.seed(seed)
    returns = rollout_returns(env, lambda obs: env.action_space.sample(), episodes, seed)
    env.close()
    return returns


def latent_bc_from_config(cfg: DictConfig) -> dict[str, Any]:
    train_cfg = dataclass_from(LatentBCTrainConfig, cfg.bc, "bc")
    lam_dir = Path(cfg.lam_dir)
    lam = FlexLAM.load(lam_dir)
    translator = Translator.load(Path(cfg.translator_dir) if cfg.translator_dir else lam_dir.parent / "translator")
    expert = load_transitions(list(cfg.expert_datasets), 0.0, 0).train
    policy = train_latent_bc(lam, expert, train_cfg)
    task = get_task(cfg.env)
    budgets = list(cfg.budgets) if cfg.budgets else list(range(1, lam.num_tokens + 1))
    make_env = lambda k: LatentActionWrapper(task.make(), lam, translator, k)  # noqa: E731
    by_budget = evaluate_latent_bc(policy, make_env, budgets, int(cfg.episodes), int(cfg.seed))
    rand = random_returns(cfg.env, int(cfg.episodes), int(cfg.seed))
    out = Path(cfg.out) if cfg.out else lam_dir.parent / "latent_bc"
    policy.save(out, extra={"lam": str(lam_dir.resolve()), "expert_datasets": list(cfg.expert_datasets),
                            "train": dataclasses.asdict(train_cfg), "returns": by_budget})
    best = max(by_budget, key=lambda k: by_budget[k]["mean"])
    gif = None
    if cfg.gif:
        frames: list[np.ndarray] = []
        env = make_env(best)
        rollout_returns(env, lambda o: policy.act(np.asarray(o)[None], best)[0], 1, int(cfg.seed), frames)
        gif = write_gif(frames, out.parent / f"latent_bc_k{best}.gif")
    result = {"returns": by_budget, "random": {"mean": float(np.mean(rand)), "stderr": float(np.std(rand) / np.sqrt(len(rand)))},
              "env": cfg.env, "episodes": int(cfg.episodes), "expert_transitions": len(expert), "best_budget": best,
              "policy": str(out.resolve()), "gif": str(gif) if gif else None}
    atomic_write_json(out.parent / "latent_bc_metrics.json", result)
    print(f"latent BC on {len(expert)} action-free expert transitions; mean return over {cfg.episodes} episodes of {cfg.env}:")
    print("| k | " + " | ".join(str(k) for k in by_budget) + " | random |\n|" + "---|" * (len(by_budget) + 2))
    print("| return | " + " | ".join(f"{v['mean']:.3f}" for v in by_budget.values()) + f" | {result['random']['mean']:.3f} |")
    print(f"\nlatent BC policy: {out.resolve()}" + (f"  (GIF at k={best}: {gif})" if gif else ""))
    return result


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="latent_bc")
@clean_errors
def main(cfg: DictConfig) -> None:
    latent_bc_from_config(cfg)


if __name__ == "__main__":
    main()
