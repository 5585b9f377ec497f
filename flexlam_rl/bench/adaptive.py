"""Adaptive token budgets: rate-distortion, agent-chosen lengths under a token cost, adaptive latent BC.

``benchmarks/adaptive.py`` is the command line.

1. **Rate-distortion** (``rate_distortion_<suite>.{json,png}``, ``..._lengths.png``): the committed
   benchmark's seed-0 models of each suite (``flexlam-bench`` scale=default, taken from its model
   cache: run that first), one FlexLAM truncated to k vs the same FlexLAM with adaptive lengths over
   a tol sweep vs the fixed LAMs, on the held-out episodes.
2. **Token cost** (``token_cost.json``, ``token_cost.png``): PPO in latent space on MiniGrid Empty with
   the quickstart's LAM and translator (``--qs-run``: a ``flexlam-quickstart`` run directory), at fixed
   budgets and with ``agent.prefix_len=adaptive`` over a sweep of ``agent.token_cost``: the task's return
   (Monitor, before any token cost) and the mean tokens per step in the evaluation episodes.
3. **Adaptive latent BC** (``latent_bc.json``): the quickstart LAM's tokens cloned from action-free
   MiniGrid Empty expert data at fixed k and with adaptive-length targets (per tol), scored by return.

Each agent/BC configuration runs for every ``--seeds`` seed; tables give mean and standard error.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_path, atomic_write_json
from ..metrics import mean_se
from ..model.lam import FlexLAM
from ..tables import markdown_table

TOKEN_COSTS = (0.0, 0.001, 0.003, 0.01, 0.03)
FIXED_BUDGETS = (1, 2, 8)
BC_TOLS = (0.05, 0.2, 1.0)


def rate_distortion_rows(out: Path) -> dict[str, Any]:
    """Part 1: the benchmark's seed-0 models, straight from its cache (everything there is reused, nothing retrained)."""
    from ..data.sources import cache_root
    from ..evaluate.analysis import rate_distortion, rate_distortion_figures
    from .run import seed_models
    from .spec import load_scale

    bench = load_scale("default")
    results = {}
    for suite in bench.suites:
        named, data = seed_models(bench, suite, 0, cache_root() / "bench", lambda msg, name=suite.name: print(f"  [{name}] {msg}"))
        fixed = {f"fixed K={name.split('_')[1]}": lam for name, lam in named.items() if name != "flexlam"}
        result = rate_distortion(named["flexlam"], data.heldout, fixed=fixed, limit=None)
        result["models"] = {name: str(lam.source_path) for name, lam in named.items()}
        atomic_write_json(out / f"rate_distortion_{suite.name}.json", result)
        rate_distortion_figures(result, out, f"rate_distortion_{suite.name}")
        results[suite.name] = result
    return results


def token_cost_rows(qs_run: Path, seeds: list[int], steps: int, runs: Path) -> list[dict[str, Any]]:
    """Part 2: PPO on MiniGrid Empty through the quickstart LAM, fixed budgets and adaptive ones under a token cost."""
    from ..agents.train import AgentConfig, train_agent

    rows = []
    setups = [(k, 0.0) for k in FIXED_BUDGETS] + [("adaptive", c) for c in TOKEN_COSTS]
    for budget, cost in setups:
        returns, tokens = [], []
        for seed in seeds:
            cfg = AgentConfig(env="minigrid-empty", lam_dir=str(qs_run / "lam"), translator_dir=str(qs_run / "translator"),
                              prefix_len=budget, token_cost=cost, total_timesteps=steps, seed=seed, eval_freq=steps,
                              eval_episodes=10, progress_bar=False, gif=False)
            result = train_agent(cfg, runs / f"ppo_{budget}_{cost}_{seed}")
            returns.append(result.eval_mean_return)
            tokens.append(result.eval_mean_prefix_len)
        rows.append({"prefix_len": budget, "token_cost": cost, "return": mean_se(returns), "tokens": mean_se(tokens),
                     "returns": returns, "tokens_per_seed": tokens})
        print(f"  PPO {budget} cost {cost}: return {rows[-1]['return']['mean']:.3f}, tokens {rows[-1]['tokens']['mean']:.2f}",
              flush=True)
    return rows


def latent_bc_rows(qs_run: Path, seeds: list[int]) -> dict[str, Any]:
    """Part 3: latent BC on Empty's action-free expert data, fixed k vs adaptive-length targets."""
    from ..act.latent_bc import Episodes, LatentBCTrainConfig, evaluate_adaptive_latent_bc, evaluate_latent_bc, train_latent_bc
    from ..align import Translator
    from ..data.transitions import load_transitions

    lam, translator = FlexLAM.load(qs_run / "lam"), Translator.load(qs_run / "translator")
    expert = load_transitions(["flexlam/minigrid-empty/expert-v0"], 0.0, 0).train
    fixed: dict[int, list[float]] = {k: [] for k in (1, 2, 4, 8)}
    adaptive: dict[float, dict[str, list[float]]] = {tol: {"return": [], "tokens": []} for tol in BC_TOLS}
    for seed in seeds:
        cfg = replace(LatentBCTrainConfig(), seed=seed)
        policy = train_latent_bc(lam, expert, cfg)
        for k, score in evaluate_latent_bc(policy, lam, translator, "minigrid-empty", list(fixed), Episodes(20, 10_000)).items():
            fixed[k].append(score["mean"])
        for tol in BC_TOLS:
            score = evaluate_adaptive_latent_bc(train_latent_bc(lam, expert, cfg, tol=tol), lam, translator, "minigrid-empty",
                                                Episodes(20, 10_000))
            adaptive[tol]["return"].append(score["mean"])
            adaptive[tol]["tokens"].append(score["mean_tokens"])
        print(f"  latent BC seed {seed} done", flush=True)
    return {"expert_transitions": len(expert),
            "fixed": {k: {"return": mean_se(v), "tokens": float(k), "returns": v} for k, v in fixed.items()},
            "adaptive": {tol: {"return": mean_se(v["return"]), "tokens": mean_se(v["tokens"]), "returns": v["return"]}
                         for tol, v in adaptive.items()}}


def token_cost_figure(rows: list[dict[str, Any]], path: Path) -> None:
    from ..media import pyplot

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for row in rows:
        adaptive = row["prefix_len"] == "adaptive"
        label = f"adaptive, cost {row['token_cost']:g}" if adaptive else f"fixed k = {row['prefix_len']}"
        ax.errorbar(row["tokens"]["mean"], row["return"]["mean"], xerr=row["tokens"]["se"], yerr=row["return"]["se"],
                    fmt="s" if adaptive else "o", capsize=3, label=label)
    ax.set_xlabel("tokens per step (evaluation episodes)")
    ax.set_ylabel("task return (MiniGrid Empty)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def report(result: dict[str, Any]) -> str:
    lines = ["# Adaptive token budgets", "", f"`{result['command']}`", "", *([f"({result['note']})", ""] if result.get("note") else [])]
    for suite, rd in result.get("rate_distortion", {}).items():
        lines += [f"## Rate-distortion, {suite} (benchmark seed 0 models)", ""]
        for task, entry in rd["tasks"].items():
            rows = [[f"FlexLAM k = {p['k']}", f"{p['tokens']:.2f}", f"{p['mse']:.2e}"] for p in entry["truncation"]]
            rows += [[f"FlexLAM adaptive, tol {p['tol']:g}", f"{p['tokens']:.2f}", f"{p['mse']:.2e}"] for p in entry["adaptive"]]
            rows += [[name, f"{p['tokens']:.0f}", f"{p['mse']:.2e}"] for name, p in sorted(entry["fixed"].items())]
            lines += [f"**{task}** ({entry['transitions']} held-out transitions)", "", markdown_table(["code", "tokens", "MSE"], rows), ""]
    if "token_cost" in result:
        lines += ["## PPO on MiniGrid Empty: fixed budgets vs agent-chosen length under a token cost", ""]
        rows = [[row["prefix_len"], f"{row['token_cost']:g}", f"{row['return']['mean']:.3f} ± {row['return']['se']:.3f}",
                 f"{row['tokens']['mean']:.2f} ± {row['tokens']['se']:.2f}"] for row in result["token_cost"]]
        lines += [markdown_table(["prefix_len", "token_cost", "return", "tokens/step"], rows), ""]
    if "latent_bc" in result:
        bc = result["latent_bc"]
        lines += [f"## Latent BC on MiniGrid Empty ({bc['expert_transitions']} action-free expert transitions)", ""]
        rows = [[f"fixed k = {k}", f"{v['return']['mean']:.3f} ± {v['return']['se']:.3f}", f"{v['tokens']:.2f}"]
                for k, v in bc["fixed"].items()]
        rows += [[f"adaptive, tol {float(tol):g}", f"{v['return']['mean']:.3f} ± {v['return']['se']:.3f}", f"{v['tokens']['mean']:.2f}"]
                 for tol, v in bc["adaptive"].items()]
        lines += [markdown_table(["targets", "return", "tokens/step"], rows), ""]
    return "\n".join(lines)
