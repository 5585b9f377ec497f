"""Benchmark reports: aggregate the saved seeds into results.json, results.md and the plots.

Each cell (view, suite, metric, protocol, k) gets the FlexLAM minus fixed difference paired by seed, an exact
sign-flip test with its inverted 95% interval, a raw verdict and one adjusted across the cells of its view
(:mod:`flexlam_rl.bench.stats`). PPO returns are a secondary metric: reported, adjusted in their own family,
never counted in the headline.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ..act.baselines import normalized_score
from ..checkpoint import atomic_write_bytes, atomic_write_json, read_json
from ..errors import DataError
from ..metrics import mean_se
from ..pretrain.plateau import window_change
from ..tables import at_budget, markdown_table
from . import stats
from .experiment import code_record, jsonable, versions
from .plots import plot_budget_curves, plot_gap_heatmap, plot_learning_curves
from .spec import METRICS, SECONDARY_METRICS, VIEWS, BenchConfig
from .stats import VERDICTS, benjamini_hochberg, min_p_value, paired_test, verdict

CAPPED = "†"  # marks a cell where some model stopped at the update cap instead of a plateau


def aggregate(per_seed: dict[str, dict[int, dict[str, Any]]], cfg: BenchConfig) -> dict[str, Any]:
    """Claims with paired CIs, means per method, per-model training records and learning curves."""
    claims, summary = [], {}
    for view in VIEWS:
        for suite, seeds in per_seed.items():
            runs = [seeds[s] for s in sorted(seeds)]
            capped = _capped(runs)
            for metric, (higher, _) in METRICS.items():
                names = ("any", *(run[0] for run in cfg.label_runs()))
                protocols = [p for p in names if all(p in r["values"][view].get(metric, {}) for r in runs)]
                for protocol in protocols:
                    cells = {m: [r["values"][view][metric][protocol][m] for r in runs] for m in ("flexlam", "fixed")}
                    summary.setdefault(view, {}).setdefault(suite, {}).setdefault(metric, {})[protocol] = {
                        m: {k: mean_se([at_budget(c, k) for c in cells[m]]) for k in cfg.budgets} for m in cells}
                    for k in cfg.budgets:
                        flex, fixed = (np.asarray([at_budget(f, k) for f in cells[m]], float) for m in ("flexlam", "fixed"))
                        test = paired_test(flex - fixed)
                        none = len(runs) > 1 and not np.any(stats.seed_means(flex - fixed))
                        claims.append({"view": view, "suite": suite, "metric": metric, "protocol": protocol, "labels": protocol,
                                       "k": k, "diff": test.mean, "ci95": list(test.ci) if test.ci else None,
                                       "half_width": test.half_width, "p_value": test.p_value if len(runs) > 1 else None,
                                       "verdict": stats.NO_INFORMATION if none else verdict(test, higher), "n_seeds": len(runs),
                                       "flexlam": float(flex.mean()), "fixed": float(fixed.mean()),
                                       "higher_is_better": higher, "secondary": metric in SECONDARY_METRICS,
                                       "capped": capped["flexlam"] or capped[f"fixed_{k}"],
                                       "updates": {name: float(np.mean([r["models"][name]["updates"] for r in runs]))
                                                   for name in ("flexlam", f"fixed_{k}")},
                                       **_noninferiority(cfg, view, metric, flex - fixed, higher)})
    adjust_verdicts(claims)
    window = int(cfg.train.get("plateau_window", 4))
    models = {suite: {seed: {name: {**{key: value for key, value in record.items() if key != "curve"},
                                    "final_change": final_change(record.get("curve", []), window)}
                             for name, record in run["models"].items()} for seed, run in seeds.items()}
              for suite, seeds in per_seed.items()}
    counts = {view: _count(claims, view, "verdict_adjusted") for view in VIEWS}
    counts_raw = {view: _count(claims, view, "verdict") for view in VIEWS}
    dials = {"gap_map": gap_map(claims)} if cfg.label_fractions or cfg.low_return_quantiles else {}
    if cfg.confirm:
        dials["confirmatory"] = confirmatory(claims, cfg.confirm)
    if cfg.primary:
        dials["primary"] = primary_endpoints(per_seed, cfg)
    majority = {suite: {labels: float(np.mean([r["majority_rate"][labels] for r in seeds.values()]))
                        for labels in next(iter(seeds.values()))["majority_rate"]}
                for suite, seeds in per_seed.items() if all("majority_rate" in r for r in seeds.values())}
    if majority:
        dials["majority_rate"] = majority
    return {"claims": claims, "counts": counts, "counts_raw": counts_raw, "protocol": protocol_record(cfg, per_seed), **dials,
            "summary": summary, "models": models,
            "learning_curves": {suite: _mean_curves(seeds) for suite, seeds in per_seed.items()},
            "compute": {suite: _compute(seeds, cfg) for suite, seeds in per_seed.items()},
            "code_usage": {suite: {name: np.mean([r["code_usage"][name] for r in seeds.values()], axis=0).round(3).tolist()
                                   for name in next(iter(seeds.values()))["code_usage"]} for suite, seeds in per_seed.items()},
            "baselines": {suite: _baselines(seeds, cfg, suite) for suite, seeds in per_seed.items()
                          if all("baselines" in run for run in seeds.values())}}


PRIMARY_VIEW = "equal_updates"  # "each to its own plateau": the view the primary-endpoint protocol reads


def _noninferiority(cfg: BenchConfig, view: str, metric: str, diffs: np.ndarray, higher: bool) -> dict[str, Any]:
    """A claim's non-inferiority reading against its metric's margin (``noninferior`` None where the protocol does
    not test it: no margin, another view, one seed, or no information)."""
    if not cfg.margins or metric not in cfg.margins or view != PRIMARY_VIEW:
        return {"noninferior": None}
    ni = stats.noninferiority(diffs, float(cfg.margins[metric]), higher)
    return {"noninferior": ni.noninferior, "margin": ni.margin, "ni_p_value": ni.p_value, "ni_test": ni.test,
            "shape_size": ni.shape_size}


def primary_endpoints(per_seed: dict[str, dict[int, dict[str, Any]]], cfg: BenchConfig) -> list[dict[str, Any]]:
    """The primary endpoints named in the scale: per seed, the mean over budgets of FlexLAM minus fixed (tasks
    averaged); the two-sided exact test, Holm-adjusted among the endpoints, and non-inferiority on the mean."""
    out = []
    for name in cfg.primary or []:
        suite, labels, metric = name.split("/")
        higher = METRICS[metric][0]
        runs = [per_seed[suite][s] for s in sorted(per_seed.get(suite, {}))]
        if not runs or labels not in runs[0]["values"][PRIMARY_VIEW].get(metric, {}):
            out.append({"endpoint": name, "suite": suite, "labels": labels, "metric": metric, "missing": True})
            continue
        scored = [r["values"][PRIMARY_VIEW][metric][labels] for r in runs]
        diffs = np.array([np.mean([np.mean(at_budget(v["flexlam"], k)) - np.mean(at_budget(v["fixed"], k)) for k in cfg.budgets])
                          for v in scored])
        test = paired_test(diffs)
        ni = stats.noninferiority(diffs, float(cfg.margins[metric]), higher)
        out.append({"endpoint": name, "suite": suite, "labels": labels, "metric": metric, "diff": test.mean,
                    "ci95": list(test.ci) if test.ci else None, "p_value": test.p_value if len(runs) > 1 else None,
                    "n_seeds": len(runs), "higher_is_better": higher, "margin": ni.margin, "noninferior": ni.noninferior,
                    "ni_p_value": ni.p_value, "ni_test": ni.test, "no_information": ni.no_information})
    tested = [e for e in out if not e.get("missing") and e["p_value"] is not None]
    for e, adjusted in zip(tested, stats.holm_adjusted([e["p_value"] for e in tested])):
        e["p_adjusted"] = float(adjusted)
        e["verdict"] = (stats.NO_INFORMATION if e["no_information"]
                        else stats.decide(e["diff"], e["higher_is_better"], adjusted <= 1 - stats.LEVEL))
    for e in out:
        e.setdefault("p_adjusted", None)
        e.setdefault("verdict", stats.PENDING)
    return out


def _baselines(seeds: dict[int, dict[str, Any]], cfg: BenchConfig, suite: str) -> dict[str, dict[str, Any]]:
    """Per task: the mean over seeds of random, expert and true-action BC returns (None where there is none), and the
    range of latent BC's mean return over views, label runs, models and budgets, also as normalized scores. A label
    run that aligned only the stress task's translator scored only that task."""
    runs = [seeds[s] for s in sorted(seeds)]
    tasks = list(runs[0]["baselines"])
    stress = next(spec.stress_task for spec in cfg.suites if spec.name == suite)
    out: dict[str, dict[str, Any]] = {}
    for task in tasks:
        base = {key: (None if any(run["baselines"][task][key] is None for run in runs)
                      else float(np.mean([run["baselines"][task][key] for run in runs]))) for key in ("random", "expert", "true_action_bc")}
        cells = latent_bc_cells(runs, tasks, stress, task)
        norm = [normalized_score(r, base["random"], base["expert"]) for r in cells]
        out[task] = {**base, "latent_bc_range": [min(cells), max(cells)] if cells else None,
                     "latent_bc_normalized_range": None if not cells or None in norm else [min(norm), max(norm)],
                     "true_action_bc_normalized": None if base["true_action_bc"] is None
                     else normalized_score(base["true_action_bc"], base["random"], base["expert"])}
    return out


def latent_bc_cells(runs: list[dict[str, Any]], tasks: list[str], stress: str, task: str) -> list[float]:
    """One task's latent BC return, its mean over the seeds ``runs``, for every view, label run, model and budget. A
    label run whose returns list fewer tasks than the suite has aligned only the stress task's translator (another
    action set), so it scored only ``stress``."""
    cells = []
    for view in VIEWS:
        for protocol, methods in runs[0]["values"][view].get("bc_return", {}).items():
            for method, budgets in methods.items():
                for k, scored in budgets.items():
                    where = tasks if len(scored) == len(tasks) else [stress]
                    if task in where:
                        cells.append(float(np.mean([run["values"][view]["bc_return"][protocol][method][k][where.index(task)]
                                                    for run in runs])))
    return cells


def baselines_table(result: dict[str, Any]) -> str:
    """Latent BC's range per task beside its baselines, and as normalized scores (0: random play, 1: the expert's)."""
    rows = [[suite, task, f"{b['random']:.2f}", _maybe(b["expert"]), _maybe(b["true_action_bc"]),
             "-" if b["latent_bc_range"] is None else f"{b['latent_bc_range'][0]:.2f} to {b['latent_bc_range'][1]:.2f}",
             "no expert" if b["latent_bc_normalized_range"] is None
             else f"{b['latent_bc_normalized_range'][0]:.2f} to {b['latent_bc_normalized_range'][1]:.2f}"]
            for suite, tasks in result.get("baselines", {}).items() for task, b in tasks.items()]
    return markdown_table(["suite", "task", "random", "expert", "true-action BC", "latent BC", "latent BC normalized"], rows)


def _maybe(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def adjust_verdicts(claims: list[dict[str, Any]]) -> None:
    """Add ``verdict_adjusted`` to every claim: Benjamini-Hochberg over the cells read together (per view,
    headline and secondary metrics as separate families); cells without a test stay ``pending``."""
    families: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for c in claims:
        families.setdefault((c["view"], c["secondary"]), []).append(c)
    for family in families.values():
        _adjust(family)


def _adjust(family: list[dict[str, Any]]) -> None:
    """``verdict_adjusted`` for cells read together: Benjamini-Hochberg over their p-values."""
    for c, reject in zip(family, benjamini_hochberg([c["p_value"] for c in family])):
        kept = c["verdict"] in (stats.PENDING, stats.NO_INFORMATION)
        c["verdict_adjusted"] = c["verdict"] if kept else stats.decide(c["diff"], c["higher_is_better"], bool(reject))


def confirmatory(claims: list[dict[str, Any]], named: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells named before the run, adjusted only among themselves (a missing one is reported as missing)."""
    def matches(claim: dict[str, Any], want: dict[str, Any]) -> bool:
        return all(str(claim[key]) == str(want[key]) for key in ("suite", "metric", "protocol", "k", "view"))

    found = [next((dict(c) for c in claims if matches(c, want)), {**want, "missing": True}) for want in named]
    _adjust([c for c in found if not c.get("missing")])
    return found


def _count(claims: list[dict[str, Any]], view: str, key: str) -> dict[str, int]:
    """Headline cells per verdict; ``no information`` cells (every difference exactly zero) are counted apart, and
    only where there are some."""
    counts = {v: sum(1 for c in claims if c["view"] == view and not c["secondary"] and c[key] == v)
              for v in (*VERDICTS, stats.NO_INFORMATION)}
    if not counts[stats.NO_INFORMATION]:
        del counts[stats.NO_INFORMATION]
    return counts


def protocol_record(cfg: BenchConfig, per_seed: dict[str, dict[int, Any]]) -> dict[str, Any]:
    """How the cells were decided, with the simulated false-verdict rate at the seed count the run has."""
    n_seeds = min(len(seeds) for seeds in per_seed.values())
    return {"interval": stats.INTERVAL, "multiplicity": stats.MULTIPLICITY, "level": stats.LEVEL,
            "n_seeds": n_seeds, "min_p_value": min_p_value(n_seeds),
            "null_verdict_rate": stats.null_verdict_rate(n_seeds), "exact_null_rate": stats.exact_null_rate(n_seeds),
            "null_simulation": "100,000 no-difference cells, 3 tasks correlated through the seed (rho 0.5), half normal and "
                               "half Student-t (3 dof) noise, through the same test",
            "date_fixed": cfg.date_fixed, "seeds": list(cfg.seeds),
            **({"primary": list(cfg.primary), "margins": dict(cfg.margins), "primary_view": PRIMARY_VIEW,
                "noninferiority_alpha": stats.NI_ALPHA, "shape_size_limit": stats.SHAPE_SIZE_LIMIT,
                "exploration_seeds": list(cfg.exploration_seeds or [])} if cfg.primary else {})}


def protocol_key(cfg: BenchConfig) -> dict[str, Any]:
    """What a seed file records of the protocol it was made under: a report refuses to mix two."""
    return {"date_fixed": cfg.date_fixed, "margins": cfg.margins, "primary": cfg.primary}


def gap_map(claims: list[dict[str, Any]]) -> dict[str, Any]:
    """Where the gap has which sign: ``{view: {suite: {metric: {k: {verdict: n}}}}}``, counting the label
    runs (the scarcity dial) of each variation level, metric and budget by their adjusted verdicts; error
    metrics are not mapped (they do not depend on labels)."""
    out: dict[str, Any] = {}
    for c in claims:
        if c["protocol"] == "any" or c["secondary"]:
            continue
        cell = out.setdefault(c["view"], {}).setdefault(c["suite"], {}).setdefault(c["metric"], {}).setdefault(
            c["k"], dict.fromkeys(VERDICTS, 0))
        if c["verdict_adjusted"] in cell:
            cell[c["verdict_adjusted"]] += 1
        elif c["verdict_adjusted"] == stats.NO_INFORMATION:  # counted apart, and only where there are some
            cell[stats.NO_INFORMATION] = cell.get(stats.NO_INFORMATION, 0) + 1
    return out


def gap_map_table(result: dict[str, Any], cfg: BenchConfig, view: str) -> str:
    """The gap map as text: per variation level and metric, ``better / tie / worse`` label runs at each budget."""
    def text(cell: dict[str, int]) -> str:
        none = cell.get(stats.NO_INFORMATION, 0)
        return " / ".join(str(cell[v]) for v in VERDICTS) + (f" (+{none} no information)" if none else "")

    rows = [[suite, METRICS[metric][1], *(text(cells[k]) if k in cells else "-" for k in cfg.budgets)]
            for suite, metrics in result["gap_map"][view].items() for metric, cells in metrics.items()]
    return markdown_table(["suite", "metric", *(f"k={k}: better / tie / worse" for k in cfg.budgets)], rows)


def final_change(curve: list[dict[str, Any]], window: int) -> float | None:
    """How fast a model was still improving when it stopped: the plateau statistic at its last check.

    Per budget, the relative change of the mean validation error of the last ``window`` checks against the
    ``window`` before (negative: still improving; the rule stops once every budget is above -tol); the
    most improving budget is reported, the one that kept training going. It ignores LR phases, so it reads
    a capped model's slope, not the stop decision itself. None when the curve is too short.
    """
    budgets = curve[0]["mse"] if curve else {}
    changes = [window_change([float(point["mse"][k]) for point in curve], window) for k in budgets]
    return None if not changes or changes[0] is None else float(min(changes))


def _capped(runs: list[dict[str, Any]]) -> dict[str, bool]:
    """Per model: did any seed stop at the update cap rather than a plateau? (An equal-compute share is not a cap.)"""
    names = runs[0]["models"]
    return {name: any(not r["models"][name]["plateaued"] for r in runs) for name in names}


def _mean_curves(seeds: dict[int, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each model's held-out curve, averaged over the seeds that reached each point (``n_seeds``).

    A point's ``wall_s`` is its updates times the seeds' mean seconds per update: the mean raw wall
    time of the seeds still running would jump back each time a slower seed stops."""
    out = {}
    for name in next(iter(seeds.values()))["models"]:
        points: dict[int, list[dict[str, Any]]] = {}
        rates = []
        for run in seeds.values():
            curve = run["models"][name].get("curve", [])
            for point in curve:
                points.setdefault(int(point["updates"]), []).append(point)
            if curve and curve[-1]["updates"] > 0:
                rates.append(curve[-1]["wall_s"] / curve[-1]["updates"])
        rate = float(np.mean(rates)) if rates else float("nan")
        out[name] = [{"updates": updates, "n_seeds": len(group), "wall_s": updates * rate,
                      "mse": {k: float(np.mean([p["mse"][k] for p in group])) for k in group[0]["mse"]}}
                     for updates, group in sorted(points.items())]
    return out


def _compute(seeds: dict[int, dict[str, Any]], cfg: BenchConfig) -> dict[str, float]:
    """Training cost of one FlexLAM against the fixed LAMs it replaces (means over seeds)."""
    runs = list(seeds.values())
    fixed = [f"fixed_{k}" for k in cfg.budgets]

    def mean(key: str, names: list[str]) -> float:
        return float(np.mean([sum(r["models"][n][key] for n in names) for r in runs]))

    out = {"flexlam_updates": mean("updates", ["flexlam"]), "flexlam_wall_s": mean("wall_s", ["flexlam"]),
           "flexlam_flops": mean("flops", ["flexlam"]), "fixed_updates": mean("updates", fixed),
           "fixed_wall_s": mean("wall_s", fixed), "fixed_flops": mean("flops", fixed), "models_replaced": len(fixed)}
    out["fixed_over_flexlam_flops"] = out["fixed_flops"] / max(out["flexlam_flops"], 1e-9)
    out["fixed_over_flexlam_wall"] = out["fixed_wall_s"] / max(out["flexlam_wall_s"], 1e-9)
    return out


# ------------------------------------------------------------------------ reports
def _fmt(metric: str) -> str:
    return "{:+.5f}" if metric == "recon" else "{:+.3f}"


def _interval(ci: list[float] | None, fmt: str) -> str:
    return "[unbounded]" if ci is None else f"[{fmt.format(ci[0])}, {fmt.format(ci[1])}]"


def _cell_text(cell: dict[str, Any], fmt: str) -> str:
    """``diff [CI] **adjusted verdict**`` (plus the raw verdict where the adjustment changed it)."""
    raw = "" if cell["verdict"] == cell["verdict_adjusted"] else f" (raw {cell['verdict']})"
    return (f"{fmt.format(cell['diff'])} {_interval(cell['ci95'], fmt)} **{cell['verdict_adjusted']}**{raw}"
            f"{CAPPED if cell['capped'] else ''}")


def claims_table(result: dict[str, Any], cfg: BenchConfig, view: str) -> str:
    """One row per (suite, metric, protocol): FlexLAM minus fixed [95% CI] and the verdict, per budget."""
    rows, grouped = [], {}
    for c in result["claims"]:
        if c["view"] == view:
            grouped.setdefault((c["suite"], c["metric"], c["protocol"]), {})[c["k"]] = c
    for (suite, metric, protocol), cells in grouped.items():
        fmt = _fmt(metric)
        label = f"{METRICS[metric][1]} ({'higher' if METRICS[metric][0] else 'lower'} is better)" + (
            ", secondary" if metric in SECONDARY_METRICS else "")
        rows.append([suite, label, "-" if protocol == "any" else protocol, *(_cell_text(cells[k], fmt) for k in cfg.budgets)])
    return markdown_table(["suite", "metric", "labels", *(f"k={k}: FlexLAM - fixed [95% CI]" for k in cfg.budgets)], rows)


def models_table(result: dict[str, Any]) -> str:
    rows = []
    for suite, seeds in result["models"].items():
        names = next(iter(seeds.values()))
        for name in names:
            recs = [seeds[s][name] for s in seeds]
            plateaued = sum(bool(r["plateaued"]) for r in recs)
            shares = [r["equal_compute"]["updates"] for r in recs if "equal_compute" in r]
            changes = [100 * r["final_change"] for r in recs if r.get("final_change") is not None]
            rows.append([suite, name, f"{np.mean([r['updates'] for r in recs]):.0f} ({min(r['updates'] for r in recs)}-"
                                      f"{max(r['updates'] for r in recs)})", _seconds(float(np.mean([r['wall_s'] for r in recs]))),
                         _flop(float(np.mean([r['flops'] for r in recs]))), f"{plateaued}/{len(recs)}",
                         f"{np.mean(changes):+.1f}% ({min(changes):+.1f}..{max(changes):+.1f})" if changes else "-",
                         f"{np.mean(shares):.0f}" if shares else "-"])
    return markdown_table(["suite", "model", "updates, mean (range)", "wall time", "training compute", "plateaued",
                           "change at stop, mean (range)", "equal-compute updates"], rows)


def results_markdown(result: dict[str, Any], cfg: BenchConfig) -> str:
    counts = result["counts"]
    again = f" (re-aggregated by `{result['reaggregated_by']}`)" if result.get("reaggregated_by") else ""
    code = result.get("code") or {}
    made_by = (f"Seed files made by {_code_text(code)}." if not code.get("mixed") else
               "Seed files made by MIXED code, aggregated anyway (allow_mixed_code=true): "
               + "; ".join(f"{text}: {', '.join(files)}" for text, files in code["mixed"].items()) + ".")
    machines = result.get("machines") or {}
    if machines:  # numerics depend on the CPU kind: a result says which machines made its seeds
        made_by += " Machines: " + "; ".join(f"{text} ({len(files)} seed files)" for text, files in machines.items()) + "."
    lines = [f"# Benchmark `{cfg.name}`", "", f"Command: `{result['command']}`{again}", "", made_by, "",
             f"Seeds per suite: {result['seeds_done']}; budgets k in {cfg.budgets} (K = {cfg.num_tokens}). FlexLAM is one "
             f"model truncated to k tokens; fixed is a separate LAM trained with K = k. {_stop_text(cfg)} "
             f"Each cell: the FlexLAM minus fixed difference paired by "
             f"seed, its 95% interval, and the verdict (`better` / `tie` / `worse` for FlexLAM; the sign of error metrics is "
             f"flipped in the verdict) after the multiplicity adjustment, with the cell's own verdict in brackets where the "
             f"adjustment changed it. {CAPPED}: some model in the cell hit the update cap. "
             f"Wall time: {result['wall_time_s'] / 60:.1f} min summed over the processes that finished each (suite, seed) "
             f"job (a job resumed from its cached models counts only its last process; each model's own training "
             f"time is in the Models table).", "", protocol_text(result), ""]
    if "gap_map" in result:
        runs = [run[0] for run in cfg.label_runs()]
        lines += ["## The gap map", "", f"Per variation level (suite), metric and budget: how many of the {len(runs)} label "
                  f"runs ({', '.join(runs)}) have FlexLAM better / tie / worse than the fixed LAM (paired 95% CI).", ""]
        for view in VIEWS:
            lines += [f"View `{view}`:", "", gap_map_table(result, cfg, view), ""]
    if result.get("confirmatory"):
        lines += ["## Confirmatory cells", "", "Named before this run (`confirm` in the scale's config) and adjusted only "
                  "among themselves; every other cell below is exploratory.", "", confirmatory_table(result["confirmatory"]), ""]
    if result.get("majority_rate"):
        lines += ["Translator accuracy is read against the majority-class rate (always answering the evaluation set's "
                  "commonest action; mean over seeds and task groups): " + "; ".join(
                      f"{suite} {labels} {rate:.3f}" for suite, runs in result["majority_rate"].items() for labels, rate in runs.items())
                  + ". Balanced accuracy (`align_balanced`), which a constant answer cannot inflate, is a metric of its own.", ""]
    if result.get("primary"):
        lines += primary_markdown(result, cfg)
    for view in VIEWS:
        c = counts[view]
        none = f", no information {c[stats.NO_INFORMATION]}" if c.get(stats.NO_INFORMATION) else ""
        lines += [f"## View `{view}`, {VIEW_NAMES[view]}: better {c['better']}, tie {c['tie']}, worse {c['worse']}{none} "
                  "(headline cells, PPO excluded)", "", updates_text(result, view), "", claims_table(result, cfg, view), ""]
    train = cfg.train
    lines += ["## Models: training to a plateau", "",
              f"Change at stop: per budget, the mean validation error of the last {train.get('plateau_window', 4)} checks "
              f"against the {train.get('plateau_window', 4)} before ({train.get('eval_every', '?')} updates apart), for the "
              f"budget still improving fastest; the rule calls a plateau once every budget is above "
              f"-{100 * float(train.get('plateau_tol', 0.02)):.0f}%, so for a capped model it says how fast it was still "
              f"improving at the cap.", "", models_table(result), ""]
    for suite, comp in result["compute"].items():
        lines += [f"{suite}: one FlexLAM {comp['flexlam_updates']:.0f} updates, {_seconds(comp['flexlam_wall_s'])}, "
                  f"{_flop(comp['flexlam_flops'])} vs the {comp['models_replaced']} fixed LAMs it replaces "
                  f"{comp['fixed_updates']:.0f} updates, {_seconds(comp['fixed_wall_s'])}, {_flop(comp['fixed_flops'])} "
                  f"({comp['fixed_over_flexlam_flops']:.1f}x the FLOPs, {comp['fixed_over_flexlam_wall']:.1f}x the wall time).", ""]
    if result.get("baselines"):
        lines += ["## Latent BC beside random, expert and true-action BC play", "",
                  "Mean return per task over seeds, on the episodes and step cap latent BC is scored with; latent BC's "
                  "range is over views, label runs, models and budgets.", "", baselines_table(result), ""]
    lines += ["Code usage (held-out perplexity per slot, mean over seeds):", ""]
    for suite, usage in result["code_usage"].items():
        lines += [f"- {suite} {name}: " + " ".join(f"{u:.2f}" for u in values) for name, values in usage.items()]
    lines.append("")
    return "\n".join(lines)


VIEW_NAMES = {"equal_updates": "each model to its own plateau", "equal_compute": "FlexLAM at the fixed LAMs' summed compute"}


def updates_text(result: dict[str, Any], view: str) -> str:
    """The mean updates each model trained in this view, per suite: what "equal updates" never meant."""
    per_suite: dict[str, dict[str, float]] = {}
    for c in result["claims"]:
        if c["view"] == view and "updates" in c:
            per_suite.setdefault(c["suite"], {}).update(c["updates"])
    return "Mean updates per model: " + "; ".join(
        f"{suite}: " + ", ".join(f"{name} {n:.0f}" for name, n in sorted(models.items(), key=lambda kv: (kv[0] != "flexlam", kv[0])))
        for suite, models in per_suite.items()) + "."


def primary_markdown(result: dict[str, Any], cfg: BenchConfig) -> list[str]:
    """The primary endpoints (Holm among themselves), then per budget non-inferiority against the margins, with
    what each interval rules out read from its ends."""
    p = result["protocol"]
    power = p.get("power", {})
    lines = ["## Primary endpoints", "",
             f"Fixed {p['date_fixed']} on fresh seeds {p['seeds']} (never {p['exploration_seeds']}). Per suite and label "
             f"protocol: the mean over budgets {cfg.budgets} of FlexLAM minus fixed ({VIEW_NAMES[PRIMARY_VIEW]}); two-sided "
             f"exact sign-flip test, Holm-adjusted over the {len(p['primary'])} endpoints; non-inferiority at one-sided "
             f"{p['noninferiority_alpha']} against the margins {p['margins']}. Power: the simulated chance of showing "
             f"non-inferiority when the true difference is 0, at the exploration seeds' SDs (power.json).", ""]
    rows = []
    for e in result["primary"]:
        if e.get("missing"):
            rows.append([e["endpoint"], "not run", "-", "-", "-", "-", "-"])
            continue
        ci = "[unbounded]" if e["ci95"] is None else f"[{e['ci95'][0]:+.3f}, {e['ci95'][1]:+.3f}]"
        rows.append([e["endpoint"], f"{e['diff']:+.3f} {ci}", _p(e["p_value"]), _p(e["p_adjusted"]), e["verdict"],
                     {True: "yes", False: "not shown", None: "not tested"}[e["noninferior"]],
                     "-" if e["endpoint"] not in power else f"{power[e['endpoint']]:.2f}"])
    lines += [markdown_table(["endpoint", "FlexLAM - fixed [95% CI]", "p", "p (Holm)", "verdict", "non-inferior", "power"], rows), ""]
    grouped: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for c in result["claims"]:
        if c["view"] == PRIMARY_VIEW and c.get("margin") is not None:
            grouped.setdefault((c["suite"], c["labels"], c["metric"]), {})[int(c["k"])] = c
    rows = []
    for (suite, labels, metric), cells in grouped.items():
        every = all(cells[k]["noninferior"] for k in cfg.budgets)
        rows.append([suite, labels, metric, *(_ni_text(cells[k]) for k in cfg.budgets), "yes" if every else "not shown"])
    lines += ["Per budget: non-inferiority (one-sided, margin in the metric's units) and what the 95% interval rules out; "
              "non-inferior at every budget is an intersection-union test (each budget must pass).", "",
              markdown_table(["suite", "labels", "metric", *(f"k={k}" for k in cfg.budgets), "non-inferior at every budget"], rows), ""]
    return lines


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _ni_text(cell: dict[str, Any]) -> str:
    """``non-inferior`` / ``not shown`` / ``no information``, and the interval's ends as "rules out" statements."""
    if cell["verdict"] == stats.NO_INFORMATION:
        return stats.NO_INFORMATION
    word = {True: "non-inferior", False: "not shown", None: "not tested"}[cell["noninferior"]]
    if cell["ci95"] is None:
        return f"{word}; nothing ruled out"
    low, high = cell["ci95"]
    if not cell["higher_is_better"]:
        low, high = -high, -low
    return f"{word}; rules out FlexLAM worse by > {max(0.0, -low):.3f} or better by > {max(0.0, high):.3f}"


def confirmatory_table(cells: list[dict[str, Any]]) -> str:
    rows = []
    for c in cells:
        where = [c["suite"], c["metric"], c["protocol"], c["k"], c["view"]]
        if c.get("missing"):
            rows.append([*where, "not run", "-", "-", "-", "-"])
            continue
        ci = f"[{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}]" if c["ci95"] else "unbounded"
        rows.append([*where, f"{c['flexlam']:.3f} vs {c['fixed']:.3f}", f"{c['diff']:+.3f} {ci}", f"{c['p_value']:.4f}",
                     c["n_seeds"], c["verdict_adjusted"]])
    return markdown_table(["suite", "metric", "labels", "k", "view", "FlexLAM vs fixed", "diff [95% CI]", "p", "seeds",
                           "verdict (adjusted)"], rows)


def _stop_text(cfg: BenchConfig) -> str:
    cap = f", or for at most {cfg.train['max_steps']} updates" if "max_steps" in cfg.train else ""
    if cfg.validation_fraction > 0:
        return (f"Every LAM trains until its error on a validation split ({cfg.validation_fraction:g} of the training "
                f"episodes, never scored) has plateaued at every budget it serves{cap} (`train` settings in results.json).")
    return ("Every LAM trains until its held-out loss plateaus, judged on the split the reconstruction metric is scored on "
            "(the protocol in force when this run was made; `train` settings in results.json).")


def protocol_text(result: dict[str, Any]) -> str:
    """The statistics in words, with what they cannot do at this seed count."""
    p = result["protocol"]
    text = (f"**Statistics** (fixed {p['date_fixed'] or 'date not recorded'}): {p['interval']}; {p['multiplicity']} across "
            f"the cells of a view (false discovery rate 5%). Simulated false-verdict rate of one cell with no true "
            f"difference at {p['n_seeds']} seeds: {p['null_verdict_rate']:.3f} ({p['null_simulation']}).")
    if p["min_p_value"] > 1 - p["level"]:
        text += (f" **Too few seeds for any verdict:** with {p['n_seeds']} seeds the exact test's smallest p-value is "
                 f"{p['min_p_value']:.3f}, so every cell is a tie with an unbounded interval; the means are exploratory.")
    return text


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.2f} s"


def _flop(value: float) -> str:
    return f"{value / 1e12:.2f} TFLOP" if value >= 1e12 else f"{value / 1e9:.2f} GFLOP"


def saved_seeds(out_dir: Path, keys: dict[str, str], codes: dict[str, Any] | None = None,
                protocols: dict[str, Any] | None = None,
                machines: dict[str, Any] | None = None) -> tuple[dict[str, dict[int, dict[str, Any]]], float]:
    """The saved (suite, seed) metrics under ``out_dir/seeds`` made with this config (``keys``: suite -> config
    key; seeds of another configuration of the same name are skipped), and their summed wall time. ``codes``, when
    given, receives each used seed file's recorded code (None: made before seed files recorded it), by file name;
    ``protocols`` every seed file's recorded protocol (:func:`protocol_key`; None where not recorded), ``machines``
    each used seed file's machine (None where not recorded)."""
    per_seed: dict[str, dict[int, dict[str, Any]]] = {}
    wall = 0.0
    for path in sorted((out_dir / "seeds").glob("*.json")) if (out_dir / "seeds").is_dir() else []:
        record = read_json(path, "seed result")
        if protocols is not None:
            protocols[path.name] = record.get("protocol")
        if keys.get(record.get("suite")) != record.get("config_key"):
            continue
        per_seed.setdefault(record["suite"], {})[int(record["seed"])] = record["metrics"]
        wall += float(record.get("wall_time_s", 0.0))
        if codes is not None:
            codes[path.name] = record.get("code")
        if machines is not None:
            machines[path.name] = record.get("machine")
    return per_seed, wall


def files_by_record(records: dict[str, Any]) -> dict[str, list[str]]:
    """Seed file names grouped by what they record (a code or protocol record, as sorted JSON), names in order."""
    groups: dict[str, list[str]] = {}
    for name, record in sorted(records.items()):
        groups.setdefault(json.dumps(record, sort_keys=True), []).append(name)
    return groups


def seeds_code(codes: dict[str, Any], out_dir: Path, allow_mixed: bool = False) -> dict[str, Any]:
    """The one code the seed files were made by (``commit``, ``clean``; both None where no file recorded it), or a
    refusal naming the files of each code: results made by different code are not one result. ``allow_mixed``
    aggregates them anyway and says so (``mixed``: each code and its files)."""
    groups = files_by_record(codes)
    if len(groups) <= 1:
        only = json.loads(next(iter(groups), "null")) or {}
        return {"commit": only.get("commit"), "clean": only.get("clean"), "mixed": None,
                **({"note": only["note"]} if only.get("note") else {})}
    described = "; ".join(f"{_code_text(json.loads(code))}: {', '.join(files)}" for code, files in groups.items())
    if not allow_mixed:
        raise DataError(f"The seed files under {out_dir / 'seeds'} were made by different code ({described}); re-run the "
                        f"odd ones with one commit, or aggregate them anyway with allow_mixed_code=true (results.md then says so).")
    return {"commit": None, "clean": None, "mixed": {_code_text(json.loads(code)): files for code, files in groups.items()}}


def check_one_protocol(protocols: dict[str, Any], cfg: BenchConfig, out_dir: Path) -> None:
    """Refuse a results folder whose seed files were made under different protocols (date fixed, margins, primary
    endpoints), or under another than this scale's where the scale fixes one: naming the files of each. Seed files
    made before they recorded a protocol count only under a primary-endpoint scale (as not its own)."""
    groups = files_by_record({name: record for name, record in protocols.items() if record is not None or cfg.primary})
    own = json.dumps(protocol_key(cfg), sort_keys=True)
    odd = {p: files for p, files in groups.items() if p != own} if cfg.primary else {}
    if len(groups) > 1 or odd:
        described = "; ".join(f"{record}: {', '.join(files)}" for record, files in groups.items())
        raise DataError(f"The seed files under {out_dir / 'seeds'} were made under different protocols ({described}; this "
                        f"scale's: {own}); a result mixes none. Move the odd files aside or run them again under one protocol.")


def _machine_text(machine: dict[str, Any] | None) -> str:
    """A seed file's machine as a line of text: training numerics depend on the CPU kind, so a result says which."""
    if not machine:
        return "machine not recorded"
    return f"{machine['cpu']} ({machine.get('capability', '?')}, {machine.get('cores', '?')} cores)"


def _code_text(code: dict[str, Any] | None) -> str:
    """What made a seed file: its commit and whether the tree was clean, and a note where that was reconstructed
    afterwards (seed files made before they recorded their code)."""
    if not code or not code.get("commit"):
        return "code not recorded"
    text = f"commit {code['commit'][:12]}" + ("" if code.get("clean") else " with uncommitted changes")
    return text + (f" ({code['note']})" if code.get("note") else "")


def write_reports(cfg: BenchConfig, out_dir: Path, command: str, keys: dict[str, str],
                  reaggregated_by: str | None = None, allow_mixed_code: bool = False) -> dict[str, Any]:
    """Aggregate every saved seed of this config (``keys``: suite -> config key) into the reports
    (``reaggregated_by``: the command that re-read saved seeds made by ``command``). Seed files made by different
    code are refused before anything is written, unless ``allow_mixed_code`` (see :func:`seeds_code`)."""
    codes: dict[str, Any] = {}
    protocols: dict[str, Any] = {}
    machines: dict[str, Any] = {}
    per_seed, wall = saved_seeds(out_dir, keys, codes, protocols, machines)
    if not per_seed:
        raise DataError(f"No finished seeds for this configuration under {out_dir}; run the benchmark first.")
    check_one_protocol(protocols, cfg, out_dir)
    code = seeds_code(codes, out_dir, allow_mixed_code)
    agg = aggregate(per_seed, cfg)
    if cfg.primary and (out_dir / "power.json").is_file():  # benchmarks/primary_power.py, at the protocol's seed count
        power = read_json(out_dir / "power.json", "power simulation", max_bytes=10_000_000)
        n = str(power["seeds_chosen"])
        agg["protocol"]["power"] = {e["endpoint"]: e["power_noninferiority"][n] for e in power["endpoints"]}
        agg["protocol"]["power_difference_at_margin"] = {e["endpoint"]: e["power_difference_at_margin"][n] for e in power["endpoints"]}
    result = {
        "name": cfg.name, "command": command, **({"reaggregated_by": reaggregated_by} if reaggregated_by else {}),
        "config": jsonable(asdict(cfg)), "suite_keys": keys, "code": code, "report_code": code_record(),
        "machines": {_machine_text(json.loads(m)): files for m, files in files_by_record(machines).items()},
        "wall_time_s": wall, "versions": versions(), "seeds_done": {s: sorted(v) for s, v in per_seed.items()},
        **agg, "per_seed": {suite: {seed: run["values"] for seed, run in seeds.items()} for suite, seeds in per_seed.items()},
    }
    atomic_write_json(out_dir / "results.json", jsonable(result))
    atomic_write_bytes(out_dir / "results.md", results_markdown(result, cfg).encode())
    plot_budget_curves(result, cfg, out_dir / "budget_curves.png")
    plot_learning_curves(result, cfg, out_dir / "learning_curves.png")
    if cfg.label_fractions or cfg.low_return_quantiles:
        plot_gap_heatmap(result, cfg, out_dir / "gap_heatmap.png")
    return result
