"""Benchmark reports: aggregate the saved seeds into results.json, results.md and budget_curves.png."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checkpoint import atomic_path, atomic_write_bytes, atomic_write_json, read_json
from ..errors import DataError
from ..tables import markdown_table
from .spec import METRICS, BenchConfig


# -------------------------------------------------------------------- aggregation
def mean_se(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    se = float(arr.std(ddof=1) / math.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return {"mean": float(arr.mean()), "se": se, "n": int(len(arr))}


def aggregate(per_seed: dict[str, dict[int, dict[str, Any]]], cfg: BenchConfig) -> dict[str, Any]:
    """Mean +- standard error over seeds, and the claim check per suite/metric/protocol/budget."""
    summary, claims, compute, usage = {}, [], {}, {}
    for suite, seeds in per_seed.items():
        runs = list(seeds.values())
        summary[suite] = {}
        for metric, (higher, _) in METRICS.items():
            protocols = [p for p in ("any", *cfg.protocols) if runs and all(p in r.get(metric, {}) for r in runs)]
            for protocol in protocols:
                cell = {}
                for method in ("flexlam", "fixed"):
                    cell[method] = {k: mean_se([r[metric][protocol][method][str(k)] if str(k) in r[metric][protocol][method]
                                                else r[metric][protocol][method][k] for r in runs]) for k in cfg.budgets}
                summary[suite].setdefault(metric, {})[protocol] = cell
                for k in cfg.budgets:
                    flex, fixed = cell["flexlam"][k], cell["fixed"][k]
                    se = 0.0 if math.isnan(fixed["se"]) else fixed["se"]
                    holds = flex["mean"] >= fixed["mean"] - se if higher else flex["mean"] <= fixed["mean"] + se
                    claims.append({"suite": suite, "metric": metric, "protocol": protocol, "k": k,
                                   "flexlam": flex["mean"], "fixed": fixed["mean"], "fixed_se": fixed["se"], "holds": bool(holds)})
        flex_s = [r["compute"]["flexlam"]["wall_time_s"] for r in runs]
        fixed_s = [sum(v["wall_time_s"] for n, v in r["compute"].items() if n.startswith("fixed_")) for r in runs]
        compute[suite] = {"flexlam_train_s": float(np.mean(flex_s)), "fixed_total_train_s": float(np.mean(fixed_s)),
                          "fixed_over_flexlam": float(np.mean(fixed_s) / max(np.mean(flex_s), 1e-9)),
                          "models_replaced": len(cfg.budgets)}
        usage[suite] = {name: np.mean([r["code_usage"][name] for r in runs], axis=0).round(3).tolist()
                        for name in runs[0]["code_usage"]}
    return {"summary": summary, "claims": claims, "compute": compute, "code_usage": usage}


# ------------------------------------------------------------------------ reports
def results_markdown(result: dict[str, Any], cfg: BenchConfig) -> str:
    lines = [f"# Benchmark `{cfg.name}`", "", f"Command: `{result['command']}`", "",
             f"Seeds per suite: {result['seeds_done']}; budgets k in {cfg.budgets} (K = {cfg.num_tokens}); mean +- standard "
             f"error over seeds. FlexLAM is one model truncated to k tokens; fixed is a separate LAM trained with K = k. "
             f"Compute: {result['wall_time_s'] / 60:.1f} min summed over (suite, seed) jobs.", "",
             summary_table(result, cfg), ""]
    for suite, metrics in result["summary"].items():
        lines += [f"## {suite}", ""]
        for metric, protocols in metrics.items():
            higher, label = METRICS[metric]
            fmt = "{:.5f}" if metric == "recon" else "{:.3f}"
            for protocol, cell in protocols.items():
                where = "" if protocol == "any" else f", protocol `{protocol}`"
                holds = _holds(result, suite, metric, protocol)
                rows = [[method, *(f"{fmt.format(cell[method][k]['mean'])} +- {fmt.format(cell[method][k]['se'])}"
                                   for k in cfg.budgets)] for method in ("flexlam", "fixed")]
                rows.append(["claim holds", *("yes" if holds[k] else "**no**" for k in cfg.budgets)])
                lines += [f"**{label}** ({'higher' if higher else 'lower'} is better){where}", "",
                          markdown_table(["method", *(f"k={k}" for k in cfg.budgets)], rows), ""]
        comp = result["compute"][suite]
        lines += [f"Training compute: one FlexLAM {comp['flexlam_train_s']:.0f} s vs the {comp['models_replaced']} fixed LAMs "
                  f"it replaces {comp['fixed_total_train_s']:.0f} s ({comp['fixed_over_flexlam']:.1f}x).", "",
                  "Code usage (held-out perplexity per slot, mean over seeds):", ""]
        for name, usage in result["code_usage"][suite].items():
            lines.append(f"- {name}: " + " ".join(f"{u:.2f}" for u in usage))
        lines.append("")
    n_hold = sum(c["holds"] for c in result["claims"])
    lines += [f"Claim (FlexLAM mean >= fixed mean - 1 SE, error metrics mirrored) holds in {n_hold} of "
              f"{len(result['claims'])} (suite, metric, protocol, budget) cells.", ""]
    return "\n".join(lines)


def _holds(result: dict[str, Any], suite: str, metric: str, protocol: str) -> dict[int, bool]:
    return {int(c["k"]): c["holds"] for c in result["claims"]
            if c["suite"] == suite and c["metric"] == metric and c["protocol"] == protocol}


def summary_table(result: dict[str, Any], cfg: BenchConfig) -> str:
    """One row per (suite, metric, protocol): FlexLAM vs fixed means per budget; misses in bold."""
    rows = []
    for suite, metrics in result["summary"].items():
        for metric, protocols in metrics.items():
            fmt = "{:.5f}" if metric == "recon" else "{:.3f}"
            for protocol, cell in protocols.items():
                holds = _holds(result, suite, metric, protocol)
                texts = {k: f"{fmt.format(cell['flexlam'][k]['mean'])} vs {fmt.format(cell['fixed'][k]['mean'])}" for k in cfg.budgets}
                name = f"{METRICS[metric][1]} ({'higher' if METRICS[metric][0] else 'lower'} is better)"
                rows.append([suite, name, "-" if protocol == "any" else protocol,
                             *(texts[k] if holds[k] else f"**{texts[k]}**" for k in cfg.budgets)])
    return markdown_table(["suite", "metric", "labels", *(f"k={k}: FlexLAM vs fixed" for k in cfg.budgets)], rows)


def plot_budget_curves(result: dict[str, Any], cfg: BenchConfig, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s, m, p) for s, ms in result["summary"].items() for m, ps in ms.items() for p in ps]
    cols = 4
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax, (suite, metric, protocol) in zip(axes.flat, panels):
        cell = result["summary"][suite][metric][protocol]
        for method, style in (("flexlam", "o-"), ("fixed", "s--")):
            means = [cell[method][k]["mean"] for k in cfg.budgets]
            ses = [0 if math.isnan(cell[method][k]["se"]) else cell[method][k]["se"] for k in cfg.budgets]
            ax.errorbar(cfg.budgets, means, yerr=ses, fmt=style, capsize=3, label=method)
        ax.set_xscale("log", base=2)
        ax.set_xticks(cfg.budgets, [str(k) for k in cfg.budgets])
        ax.set_title(f"{suite}: {METRICS[metric][1]}" + ("" if protocol == "any" else f"\n({protocol} labels)"), fontsize=9)
        ax.set_xlabel("token budget k")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path, suffix=".tmp.png") as tmp:  # a unique temp: parallel jobs report at once
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path


def write_reports(cfg: BenchConfig, out_dir: Path, command: str, keys: dict[str, str]) -> dict[str, Any]:
    """Aggregate every saved seed of this config (``keys``: suite -> config key) into the three reports."""
    per_seed: dict[str, dict[int, dict[str, Any]]] = {}
    wall = 0.0
    for path in sorted((out_dir / "seeds").glob("*.json")) if (out_dir / "seeds").is_dir() else []:
        record = read_json(path, "seed result")
        if keys.get(record.get("suite")) != record.get("config_key"):
            continue  # from another configuration of this benchmark name
        per_seed.setdefault(record["suite"], {})[int(record["seed"])] = record["metrics"]
        wall += float(record.get("wall_time_s", 0.0))
    if not per_seed:
        raise DataError(f"No finished seeds for this configuration under {out_dir}; run the benchmark first.")
    agg = aggregate(per_seed, cfg)
    result = {
        "name": cfg.name, "command": command, "config": jsonable(asdict(cfg)), "suite_keys": keys,
        "wall_time_s": wall, "versions": _versions(), "seeds_done": {s: sorted(v) for s, v in per_seed.items()},
        **agg, "per_seed": per_seed,
    }
    atomic_write_json(out_dir / "results.json", jsonable(result))

    atomic_write_bytes(out_dir / "results.md", results_markdown(result, cfg).encode())
    plot_budget_curves(result, cfg, out_dir / "budget_curves.png")
    return result


def _versions() -> dict[str, str]:
    import gymnasium
    import minari
    import stable_baselines3

    from .._version import __version__

    return {"flexlam_rl": __version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
            "minari": minari.__version__, "stable_baselines3": stable_baselines3.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def jsonable(obj: Any) -> Any:
    """Plain JSON types (numpy arrays and scalars become lists and numbers)."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
