"""Token-budget benchmark: one FlexLAM vs a fixed-capacity LAM per budget, on the same data.

For each suite (a set of tasks with action-free Minari data) and seed: train one FlexLAM with
K tokens and, for every budget k, a fixed LAM with K = k (same data, same updates, same seed).
Then, per budget:

1. ``recon``: held-out next-frame MSE (FlexLAM truncated to k vs the fixed LAM with K = k);
2. ``align``: translator accuracy (Discrete) or R^2 (Box) on held-out expert transitions;
3. ``bc_return``: latent BC + translator mean return over the suite's tasks;
4. ``ppo_return``: SB3 PPO in latent space on the stress task after a fixed step budget;

2-4 under both label protocols (``standard``: random labels from every task; ``low_return``:
labels only from the lowest-return episodes of the stress task). Trained LAMs are cached by a
hash of their config, and each seed's results are saved on their own, so runs resume and
parallel jobs (one seed each) share work.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .align import (
    AlignConfig,
    LabelConfig,
    action_spec,
    alignment_by_budget,
    embed_transitions,
    select_labels,
    train_translator,
)
from .checkpoint import atomic_path, atomic_write_bytes, atomic_write_json, read_json
from .collect import collect_dataset, dataset_exists, dataset_lock
from .config import LAMConfig
from .data import TransitionData, TransitionSet, load_transitions
from .envs import task_at_frame_size
from .evaluate import reconstruction_by_budget
from .latent_bc import LatentBCTrainConfig, evaluate_latent_bc, rollout_returns, train_latent_bc
from .media import write_gif
from .model import FlexLAM
from .train import TrainConfig, pretrain

METRICS = {  # name -> (higher is better, label)
    "recon": (False, "held-out next-frame MSE"),
    "align": (True, "translator accuracy / R^2"),
    "bc_return": (True, "latent BC return"),
    "ppo_return": (True, "PPO return (latent space)"),
}
PROTOCOLS = ("standard", "low_return")


@dataclass
class SuiteSpec:
    """Tasks whose action-free data pretrain one LAM; ``stress_task`` gives low-return labels and PPO."""

    name: str
    tasks: list[str]
    frame_size: int
    data: dict[str, dict[str, Any]]  # behaviour -> {episodes, epsilon?}
    stress_task: str
    ppo: bool = True

    def dataset_id(self, task: str, behaviour: str) -> str:
        """Names carry what was collected (frame size, episodes, epsilon), so a changed scale never reuses stale data."""
        spec = self.data[behaviour]
        detail = f"{int(spec['episodes'])}ep" + (f"-eps{round(100 * float(spec['epsilon']))}" if "epsilon" in spec else "")
        return f"flexlam-bench/{self.name}-{self.frame_size}px/{task}/{behaviour}-{detail}-v0"


@dataclass
class BenchConfig:
    """Everything that defines a benchmark run (recorded in results.json)."""

    name: str
    suites: list[SuiteSpec]
    seeds: list[int]
    budgets: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    num_tokens: int = 8
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    lam: dict[str, Any] = field(default_factory=dict)  # LAMConfig fields besides shape/tokens/dropout
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    label_fraction: float = 0.02
    low_return_quantile: float = 0.25
    translator: dict[str, Any] = field(default_factory=dict)  # AlignConfig fields
    bc: dict[str, Any] = field(default_factory=dict)  # LatentBCTrainConfig fields
    eval_episodes: int = 10
    ppo_steps: int = 5000
    ppo_n_envs: int = 4
    ppo_eval_episodes: int = 10
    heldout_fraction: float = 0.1
    data_seed: int = 0
    gif_budget: int = 2
    gif_seed: int = 0  # the seed whose runs write the GIFs (parallel jobs must not race on them)

    def __post_init__(self) -> None:
        if any(k < 1 or k > self.num_tokens for k in self.budgets):
            raise ValueError(f"budgets {self.budgets} must lie in 1..num_tokens={self.num_tokens}.")
        if len(self.seeds) < 1:
            raise ValueError("Give at least one seed (>= 3 for standard errors worth reading).")
        unknown = set(self.protocols) - set(PROTOCOLS)
        if unknown:
            raise ValueError(f"Unknown protocols {sorted(unknown)}; expected {PROTOCOLS}.")


# -------------------------------------------------------------------------- data
def collect_suite(suite: SuiteSpec, data_seed: int) -> dict[str, dict[str, str]]:
    """Collect (or reuse) every task x behaviour dataset of a suite: ``{task: {behaviour: id}}``."""
    ids: dict[str, dict[str, str]] = {}
    for t_idx, task in enumerate(suite.tasks):
        preprocess = dict(task_at_frame_size(task, suite.frame_size).preprocess)
        for b_idx, (behaviour, spec) in enumerate(suite.data.items()):
            dataset_id = suite.dataset_id(task, behaviour)
            with dataset_lock(dataset_id):  # parallel seeds share the data
                if not dataset_exists(dataset_id):
                    collect_dataset(
                        dataset_id, task, behaviour,
                        num_episodes=int(spec["episodes"]), seed=data_seed * 1_000_000 + t_idx * 10_000 + b_idx * 1_000,
                        epsilon=float(spec.get("epsilon", 0.3)), preprocess=preprocess,
                    )
            ids.setdefault(task, {})[behaviour] = dataset_id
    return ids


def _subset(data: TransitionSet, keep_sources: set[int]) -> TransitionSet:
    return data.subset_episodes([(s, e) for s, e in data.episodes if s in keep_sources])


# ------------------------------------------------------------------------ models
def _hash(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_cached(data: TransitionData, lam_cfg: LAMConfig, train_cfg: TrainConfig, cache_root: Path) -> tuple[FlexLAM, dict]:
    """Train a LAM, or reuse the one trained with exactly this data/config/seed."""
    key = _hash({"datasets": data.dataset_ids, "lam": lam_cfg.to_dict(), "train": asdict(train_cfg),
                 "heldout": [len(data.train), len(data.heldout)]})
    run_dir = cache_root / key
    done = run_dir / "done.json"
    if done.is_file():
        return FlexLAM.load(run_dir / "lam"), {**read_json(done), "cached": True}
    result = pretrain(run_dir, data, lam_cfg, train_cfg)
    info = {"wall_time_s": result.wall_time_s, "steps": result.step, "run_dir": str(run_dir)}
    atomic_write_json(done, info)
    return FlexLAM.load(result.lam_dir), {**info, "cached": False}


# ----------------------------------------------------------------------- one seed
def run_seed(cfg: BenchConfig, suite: SuiteSpec, seed: int, cache_root: Path, gif_dir: Path | None,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """All metrics of one suite and seed: ``{metric: {protocol: {method: {k: value}}}}`` plus extras."""
    ids = collect_suite(suite, cfg.data_seed)
    all_ids = [i for task in suite.tasks for i in ids[task].values()]
    data = load_transitions(all_ids, cfg.heldout_fraction, cfg.data_seed)
    source_of = {dataset_id: i for i, dataset_id in enumerate(all_ids)}
    expert_sources = {source_of[ids[t]["expert"]] for t in suite.tasks}
    stress_sources = {source_of[i] for i in ids[suite.stress_task].values()}
    eval_set = _subset(data.heldout, expert_sources)
    bc_set = _subset(data.train, expert_sources)
    spec = action_spec(data.train.sources[0].action_space)
    label_count = max(1, int(round(cfg.label_fraction * len(data.train))))

    train_cfg = TrainConfig(**{**cfg.train, "seed": seed, "progress": False})
    base = dict(obs_shape=list(data.obs_shape), obs_dtype="uint8" if data.is_image else "float32",
                preprocess=data.preprocess, **cfg.lam)
    variants = {"flexlam": LAMConfig(**base, num_tokens=cfg.num_tokens, nested_dropout=True)}
    # a fixed LAM never samples a prefix: pin those fields so prefix-distribution ablations reuse its cache
    fixed_base = {**base, "prefix_dist": LAMConfig.prefix_dist, "geometric_p": LAMConfig.geometric_p}
    variants.update({f"fixed_{k}": LAMConfig(**fixed_base, num_tokens=k, nested_dropout=False) for k in cfg.budgets})
    models, compute = {}, {}
    for name, lam_cfg in variants.items():
        log(f"  [{suite.name} seed {seed}] LAM {name}")
        models[name], compute[name] = train_cached(data, lam_cfg, train_cfg, cache_root)

    def lam_at(method: str, k: int) -> tuple[str, int]:
        """The model and prefix length that stand for ``method`` at budget k."""
        return ("flexlam", k) if method == "flexlam" else (f"fixed_{k}", k)

    out: dict[str, Any] = {m: {} for m in METRICS}
    recon = {name: reconstruction_by_budget(lam, data.heldout) for name, lam in models.items()}
    # reconstruction does not depend on labels: one entry, under the pseudo-protocol "any"
    out["recon"] = {"any": {m: {k: recon[lam_at(m, k)[0]]["mse"][k] for k in cfg.budgets} for m in ("flexlam", "fixed")}}
    out["code_usage"] = {name: r["code_usage"] for name, r in recon.items()}
    out["copy_baseline"] = recon["flexlam"]["copy"]

    bc_policies = {}
    for name, lam in models.items():
        log(f"  [{suite.name} seed {seed}] latent BC {name}")
        bc_policies[name] = train_latent_bc(lam, bc_set, LatentBCTrainConfig(**{**cfg.bc, "seed": seed}))

    for protocol in cfg.protocols:
        pool = data.train if protocol == "standard" else _subset(data.train, stress_sources)
        labels = select_labels(pool, LabelConfig(protocol=protocol, count=min(label_count, len(pool)),
                                                 quantile=cfg.low_return_quantile, seed=seed))
        translators, translator_dirs, align = {}, {}, {"flexlam": {}, "fixed": {}}
        for name, lam in models.items():
            labeled = embed_transitions(lam, pool, labels)
            align_cfg = AlignConfig(**{**cfg.translator, "seed": seed})
            translator = train_translator(lam, labeled, spec, align_cfg)
            key = _hash({"protocol": protocol, "labels": labels.tolist(), "align": asdict(align_cfg)})
            translator_dir = Path(lam.source_path).parent / f"translator_{key}"  # PPO loads it by path
            translator.save(translator_dir, extra={"protocol": protocol, "labels": len(labels), "seed": seed,
                                                   "align": asdict(align_cfg)})
            translators[name] = translator
            translator_dirs[name] = translator_dir
            scores = alignment_by_budget(lam, translators[name], embed_transitions(lam, eval_set, np.arange(len(eval_set))),
                                         cfg.budgets if name == "flexlam" else [lam.num_tokens])
            if name == "flexlam":
                align["flexlam"] = scores
            else:
                align["fixed"][lam.num_tokens] = scores[lam.num_tokens]
        out["align"][protocol] = align
        log(f"  [{suite.name} seed {seed}] {protocol}: align flexlam {_fmt(align['flexlam'])} fixed {_fmt(align['fixed'])}")

        bc = {"flexlam": {}, "fixed": {}}
        for method in ("flexlam", "fixed"):
            for k in cfg.budgets:
                name, _ = lam_at(method, k)
                returns = []
                for task in suite.tasks:
                    make_env = _latent_env_maker(task, models[name], translators[name], suite.frame_size)
                    returns.append(evaluate_latent_bc(bc_policies[name], make_env, [k], cfg.eval_episodes, 100_000 + seed * 1000)[k]["mean"])
                bc[method][k] = float(np.mean(returns))
        out["bc_return"][protocol] = bc
        if gif_dir is not None and protocol == "standard" and cfg.gif_budget in cfg.budgets:
            for method in ("flexlam", "fixed"):
                name, k = lam_at(method, cfg.gif_budget)
                frames: list[np.ndarray] = []
                env = _latent_env_maker(suite.tasks[0], models[name], translators[name], suite.frame_size)(k)
                rollout_returns(env, lambda o, p=bc_policies[name], k=k: p.act(np.asarray(o)[None], k)[0], 1, 7, frames)
                write_gif(frames, gif_dir / f"{suite.name}_{method}_k{k}.gif", scale=max(1, 128 // suite.frame_size))

        if suite.ppo:
            ppo = {"flexlam": {}, "fixed": {}}
            for method in ("flexlam", "fixed"):
                for k in cfg.budgets:
                    name, _ = lam_at(method, k)
                    ppo[method][k] = _ppo_return(cfg, suite, Path(models[name].source_path), translator_dirs[name], k, seed)
            out["ppo_return"][protocol] = ppo
            log(f"  [{suite.name} seed {seed}] {protocol}: ppo flexlam {_fmt(ppo['flexlam'])} fixed {_fmt(ppo['fixed'])}")
    out["compute"] = compute
    out["labels"] = {"count": label_count, "pool": len(data.train)}
    return out


def _fmt(scores: dict[int, float]) -> str:
    return " ".join(f"k{k}={v:.3f}" for k, v in scores.items())


def _latent_env_maker(task_name: str, lam: FlexLAM, translator: Any, frame_size: int) -> Callable[[int], Any]:
    from .wrappers import LatentActionWrapper

    task = task_at_frame_size(task_name, frame_size)
    return lambda k: LatentActionWrapper(task.make(), lam, translator, k)


def _ppo_return(cfg: BenchConfig, suite: SuiteSpec, lam_dir: Path, translator_dir: Path, k: int, seed: int) -> float:
    """PPO in latent space on the stress task for ``ppo_steps``: mean return of its last 20 training episodes."""
    from .agents.train import AgentConfig, train_agent

    run = translator_dir.parent / f"ppo_{translator_dir.name}_k{k}_s{seed}_{cfg.ppo_steps}"
    done = run / "agent_metrics.json"
    if done.is_file():
        return float(read_json(done, "agent metrics")["train_return_last20"])
    agent = AgentConfig(
        env=suite.stress_task, frame_size=suite.frame_size, lam_dir=str(lam_dir), translator_dir=str(translator_dir),
        prefix_len=k, total_timesteps=cfg.ppo_steps, n_envs=cfg.ppo_n_envs, seed=seed, eval_freq=10**9,
        eval_episodes=cfg.ppo_eval_episodes, device="cpu", progress_bar=False, gif=False,
        algo_kwargs={"n_steps": 64, "batch_size": 128},
    )
    return train_agent(agent, run).train_return


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
             f"Compute: {result['wall_time_s'] / 60:.1f} min summed over (suite, seed) jobs.", ""]
    lines += summary_table(result, cfg) + [""]
    for suite, metrics in result["summary"].items():
        lines += [f"## {suite}", ""]
        for metric, protocols in metrics.items():
            higher, label = METRICS[metric]
            for protocol, cell in protocols.items():
                where = "" if protocol == "any" else f", protocol `{protocol}`"
                lines += [f"**{label}** ({'higher' if higher else 'lower'} is better){where}", "",
                          "| method | " + " | ".join(f"k={k}" for k in cfg.budgets) + " |", "|---" * (len(cfg.budgets) + 1) + "|"]
                for method in ("flexlam", "fixed"):
                    fmt = "{:.5f}" if metric == "recon" else "{:.3f}"
                    cells = [f"{fmt.format(cell[method][k]['mean'])} +- {fmt.format(cell[method][k]['se'])}" for k in cfg.budgets]
                    lines.append(f"| {method} | " + " | ".join(cells) + " |")
                holds = _holds(result, suite, metric, protocol)
                lines += ["| claim holds | " + " | ".join("yes" if holds[k] else "**no**" for k in cfg.budgets) + " |", ""]
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


def summary_table(result: dict[str, Any], cfg: BenchConfig) -> list[str]:
    """One row per (suite, metric, protocol): FlexLAM vs fixed means per budget; misses in bold."""
    lines = ["| suite | metric | labels | " + " | ".join(f"k={k}: FlexLAM vs fixed" for k in cfg.budgets) + " |",
             "|---" * (len(cfg.budgets) + 3) + "|"]
    for suite, metrics in result["summary"].items():
        for metric, protocols in metrics.items():
            fmt = "{:.5f}" if metric == "recon" else "{:.3f}"
            for protocol, cell in protocols.items():
                holds = _holds(result, suite, metric, protocol)
                cells = []
                for k in cfg.budgets:
                    text = f"{fmt.format(cell['flexlam'][k]['mean'])} vs {fmt.format(cell['fixed'][k]['mean'])}"
                    cells.append(text if holds[k] else f"**{text}**")
                name = f"{METRICS[metric][1]} ({'higher' if METRICS[metric][0] else 'lower'} is better)"
                lines.append(f"| {suite} | {name} | {'-' if protocol == 'any' else protocol} | " + " | ".join(cells) + " |")
    return lines


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


def suite_key(cfg: BenchConfig, suite: SuiteSpec) -> str:
    """What a suite's saved seeds depend on: every setting but the seed list and the run name."""
    record = _jsonable(asdict(cfg))
    shared = {k: v for k, v in record.items() if k not in ("seeds", "name", "suites", "gif_seed")}
    return _hash({**shared, "suite": _jsonable(asdict(suite))})


def run_benchmark(cfg: BenchConfig, out_dir: Path, cache_root: Path, command: str, only: Sequence[str] | None = None,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every (suite, seed) not already saved (``only``: these suites), then report all saved work."""
    names = [s.name for s in cfg.suites]
    unknown = sorted(set(only or []) - set(names))
    if unknown:
        raise ValueError(f"only={sorted(only)} names unknown suites {unknown}; this scale has {names}.")
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    stamped = lambda msg: log(f"[{time.time() - t_start:7.1f}s] {msg}")  # noqa: E731
    for suite in cfg.suites:
        if only and suite.name not in only:
            continue
        key = suite_key(cfg, suite)
        for seed in cfg.seeds:
            path = out_dir / "seeds" / f"{suite.name}_seed{seed}.json"
            if path.is_file() and read_json(path, "seed result").get("config_key") == key:
                stamped(f"[{suite.name} seed {seed}] already done")
                continue
            stamped(f"[{suite.name} seed {seed}] running")
            t0 = time.time()
            metrics = run_seed(cfg, suite, seed, cache_root, out_dir / "gifs" if seed == cfg.gif_seed else None, stamped)
            atomic_write_json(path, _jsonable({"config_key": key, "seed": seed, "suite": suite.name,
                                               "wall_time_s": time.time() - t0, "metrics": metrics}))
    return write_reports(cfg, out_dir, command)


def write_reports(cfg: BenchConfig, out_dir: Path, command: str) -> dict[str, Any]:
    """Aggregate every saved seed of this config (any job, any seed list) into the three reports."""
    per_seed: dict[str, dict[int, dict[str, Any]]] = {}
    wall = 0.0
    keys = {suite.name: suite_key(cfg, suite) for suite in cfg.suites}
    for path in sorted((out_dir / "seeds").glob("*.json")) if (out_dir / "seeds").is_dir() else []:
        record = read_json(path, "seed result")
        if keys.get(record.get("suite")) != record.get("config_key"):
            continue  # from another configuration of this benchmark name
        per_seed.setdefault(record["suite"], {})[int(record["seed"])] = record["metrics"]
        wall += float(record.get("wall_time_s", 0.0))
    if not per_seed:
        raise ValueError(f"No finished seeds for this configuration under {out_dir}; run the benchmark first.")
    agg = aggregate(per_seed, cfg)
    result = {
        "name": cfg.name, "command": command, "config": _jsonable(asdict(cfg)), "suite_keys": keys,
        "wall_time_s": wall, "versions": _versions(), "seeds_done": {s: sorted(v) for s, v in per_seed.items()},
        **agg, "per_seed": per_seed,
    }
    atomic_write_json(out_dir / "results.json", _jsonable(result))

    atomic_write_bytes(out_dir / "results.md", results_markdown(result, cfg).encode())
    plot_budget_curves(result, cfg, out_dir / "budget_curves.png")
    return result


def _versions() -> dict[str, str]:
    import gymnasium
    import minari
    import stable_baselines3

    from . import __version__

    return {"flexlam_rl": __version__, "torch": torch.__version__, "gymnasium": gymnasium.__version__,
            "minari": minari.__version__, "stable_baselines3": stable_baselines3.__version__,
            "python": platform.python_version(), "platform": platform.platform()}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
