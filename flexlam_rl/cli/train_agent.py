"""``flexlam-train-agent``: SB3 PPO/A2C in latent-action space (or the raw action space)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..agents.train import AgentConfig, AgentResult, train_agent
from ._common import hydra_entry, run_dir, section


def agent_from_config(cfg: DictConfig, out_dir: Path) -> AgentResult:
    agent_cfg = section(AgentConfig, cfg.agent, "agent")
    agent_cfg.check_lam()  # a budget the LAM does not have fails before anything is built
    where = f"latent space (k={agent_cfg.prefix_len})" if agent_cfg.space == "latent" else "the raw action space"
    if agent_cfg.init_from:
        where = f"real actions, from the latent BC policy {agent_cfg.init_from} (k={agent_cfg.prefix_len}, translator as action head)"
    print(f"training {agent_cfg.algo.upper()} on {agent_cfg.env} in {where} for {agent_cfg.total_timesteps} steps -> {out_dir}")
    result = train_agent(agent_cfg, out_dir)
    if result.curve:
        print("eval return curve: " + ", ".join(f"{t}: {r:.3f}" for t, r in result.curve))
    print(f"final eval mean return over {agent_cfg.eval_episodes} episodes: {result.eval_mean_return:.3f}")
    base = result.baselines or {}
    expert = "no expert" if base.get("expert") is None else f"expert {base['expert']:.3f}"
    normalized = "none (no expert)" if result.normalized is None else f"{result.normalized:.3f}"
    print(f"same episodes, real actions: random {base.get('random', float('nan')):.3f}, {expert}; normalized score "
          f"(R - random) / (expert - random): {normalized}")
    if agent_cfg.prefix_len == "adaptive" and result.eval_mean_prefix_len is not None:
        print(f"tokens per step in those episodes: {result.eval_mean_prefix_len:.2f}")
    print(f"agent: {result.model_path.resolve()}" + (f"  GIF: {result.gif_path.resolve()}" if result.gif_path else ""))
    return result


main = hydra_entry("agent", lambda cfg: agent_from_config(cfg, run_dir()))

if __name__ == "__main__":
    main()
