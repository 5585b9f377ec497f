"""``flexlam-latent-bc``: latent behaviour cloning scored by return at every budget, beside random, expert and true-action BC."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from ..act.latent_bc import Episodes, LatentBCTrainConfig
from ..act.pipeline import LatentBCScoring, run_latent_bc
from ..config import plain
from ..tables import markdown_table
from ._common import hydra_entry, section


def latent_bc_from_config(cfg: DictConfig) -> dict[str, Any]:
    """Parse the config, run latent BC, print the returns per budget; returns the metrics."""
    episodes = Episodes(int(cfg.episodes), int(cfg.seed), plain(cfg.get("max_episode_steps")))
    metrics = run_latent_bc(
        cfg.lam_dir, cfg.env, plain(cfg.expert_datasets), section(LatentBCTrainConfig, cfg.bc, "bc"),
        translator_dir=cfg.translator_dir, out=cfg.out,
        scoring=LatentBCScoring(plain(cfg.budgets), episodes, bool(cfg.gif), plain(cfg.get("adaptive_tol"))),
    )
    returns, base, training = metrics["returns"], metrics["baselines"], metrics["training"]
    cap = f" (at most {metrics['max_episode_steps']} steps each)" if metrics["max_episode_steps"] else ""
    stop = "its validation loss plateaued" if training.get("plateaued") else "the step cap"
    print(f"latent BC ({metrics['head']} head, {metrics['frame_stack']} frame(s)) on {metrics['expert_transitions']} action-free "
          f"expert transitions: {training.get('updates')} updates ({stop}); mean return over {cfg.episodes} episodes of {cfg.env}{cap}:")
    refs = [("random", base["random"]), ("expert", base["expert"]), ("true-action BC", base["true_action_bc"])]
    rows = [["return", *(f"{v['mean']:.3f}" for v in returns.values()), *(_num(v) for _, v in refs)],
            ["normalized", *(_num(v) for v in metrics["normalized"].values()), "0", "1" if base["expert"] is not None else "-",
             _num(base["normalized_true_action_bc"])]]
    print(markdown_table(["k", *returns, *(name for name, _ in refs)], rows))
    if base["expert"] is None:
        print(f"normalized score: none ({base['expert_note']} for {cfg.env}: (R - random) / (expert - random) needs one)")
    else:
        print("normalized score: (R - random) / (expert - random), under the same env settings, step cap and episodes")
    if "adaptive" in metrics:
        a = metrics["adaptive"]
        print(f"adaptive length (tol {a['tol']:g}): return {a['mean']:.3f} with {a['mean_tokens']:.2f} tokens per step")
    gif = f"  (GIF at k={metrics['best_budget']}: {metrics['gif']})" if metrics["gif"] else ""
    print(f"\nlatent BC policy: {metrics['policy']}{gif}")
    return metrics


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


main = hydra_entry("latent_bc", latent_bc_from_config)

if __name__ == "__main__":
    main()
