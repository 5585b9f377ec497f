"""``flexlam-latent-bc``: latent behaviour cloning scored by return at every budget, vs random."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from ..config import plain
from ..latent_bc import LatentBCTrainConfig, run_latent_bc
from ..tables import markdown_table
from ._common import hydra_entry, section


def latent_bc_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Parse the config, run latent BC, print the returns per budget; returns the metrics."""
    metrics = run_latent_bc(
        cfg.lam_dir, cfg.env, plain(cfg.expert_datasets), section(LatentBCTrainConfig, cfg.bc, "bc"),
        translator_dir=cfg.translator_dir, budgets=plain(cfg.budgets), episodes=int(cfg.episodes), seed=int(cfg.seed),
        out=cfg.out, gif=bool(cfg.gif), adaptive_tol=plain(cfg.get("adaptive_tol")),
        max_episode_steps=plain(cfg.get("max_episode_steps")),
    )
    returns = metrics["returns"]
    cap = f" (at most {metrics['max_episode_steps']} steps each)" if metrics["max_episode_steps"] else ""
    print(f"latent BC on {metrics['expert_transitions']} action-free expert transitions; mean return over "
          f"{cfg.episodes} episodes of {cfg.env}{cap}:")
    print(markdown_table(["k", *returns, "random"],
                         [["return", *(f"{v['mean']:.3f}" for v in returns.values()), f"{metrics['random']['mean']:.3f}"]]))
    if "adaptive" in metrics:
        a = metrics["adaptive"]
        print(f"adaptive length (tol {a['tol']:g}): return {a['mean']:.3f} with {a['mean_tokens']:.2f} tokens per step")
    gif = f"  (GIF at k={metrics['best_budget']}: {metrics['gif']})" if metrics["gif"] else ""
    print(f"\nlatent BC policy: {metrics['policy']}{gif}")
    return metrics


main = hydra_entry("latent_bc", latent_bc_from_config)

if __name__ == "__main__":
    main()
