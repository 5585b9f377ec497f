"""The benchmark pipeline at smoke scale (checks outputs, not the claim) and its aggregation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import THREADS, run_bench

from flexlam_rl.bench import BenchConfig, SuiteSpec, aggregate, mean_se
from flexlam_rl.bench.report import _mean_curves, final_change, models_table
from flexlam_rl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _without_wall_times(record: object) -> object:
    if isinstance(record, dict):
        return {k: _without_wall_times(v) for k, v in record.items() if k not in ("wall_s", "wall_time_s")}
    return [_without_wall_times(v) for v in record] if isinstance(record, list) else record


@pytest.mark.slow
@pytest.mark.timeout(900)  # about a minute alone on 2 idle cores (benchmarks/results/bench_cost); twice that as one of two test workers
def test_smoke_scale_writes_every_report(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    run = run_bench("scale=smoke", f"out_dir={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "results.json").read_text())
    assert result["seeds_done"] == {"minigrid": [0, 1], "reach": [0, 1]}
    assert set(result["summary"]["equal_updates"]["minigrid"]) == {"recon", "align", "align_balanced", "bc_return", "ppo_return"}
    assert set(result["summary"]["equal_compute"]["minigrid"]) == {"recon", "align", "align_balanced", "bc_return"}  # PPO: one view
    assert set(result["majority_rate"]) == {"minigrid"} and 0 < result["majority_rate"]["minigrid"]["standard"] < 1  # reach: R^2
    assert "read against the majority-class rate" in (out / "results.md").read_text()
    ppo = result["summary"]["equal_updates"]["minigrid"]["ppo_return"]["standard"]
    assert all(math.isfinite(cell["mean"]) for method in ppo.values() for cell in method.values())  # every PPO run ended episodes
    for view in ("equal_updates", "equal_compute"):
        assert set(result["summary"][view]["reach"]) == {"recon", "align", "bc_return"}  # no PPO on reach
    claims = result["claims"]
    assert {(c["view"], c["suite"], c["metric"], c["protocol"]) for c in claims} >= {("equal_updates", "minigrid", "align", "standard")}
    for claim in claims:  # the contract, cell by cell
        assert {"suite", "metric", "protocol", "k", "diff", "ci95", "verdict", "n_seeds", "verdict_adjusted", "half_width"} <= set(claim)
        # 2 seeds: no exact verdict (and a cell whose two differences are exactly 0, e.g. no model ever scores, has no information)
        assert claim["n_seeds"] == 2 and claim["verdict"] == claim["verdict_adjusted"] in ("tie", "no information")
        scored = result["per_seed"][claim["suite"]]["0"][claim["view"]][claim["metric"]][claim["protocol"]]
        seed0 = np.subtract(scored["flexlam"][str(claim["k"])], scored["fixed"][str(claim["k"])])
        assert claim["verdict"] == "tie" or not np.any(seed0)
        assert claim["ci95"] is None and claim["half_width"] is None
    protocol = result["protocol"]
    assert protocol["multiplicity"] == "benjamini-hochberg" and "sign-flip" in protocol["interval"]
    assert protocol["null_verdict_rate"] <= 0.05 and protocol["date_fixed"] == "2026-12-01"
    assert sum(result["counts"]["equal_updates"].values()) == sum(1 for c in claims if c["view"] == "equal_updates" and not c["secondary"])
    models = result["models"]["minigrid"]["0"]
    assert set(models) == {"flexlam", "fixed_1", "fixed_2", "fixed_4", "fixed_8"}
    assert all({"updates", "wall_s", "plateaued"} <= set(m) for m in models.values())
    curves = result["learning_curves"]["minigrid"]
    assert set(curves["flexlam"][0]["mse"]) == {"1", "2", "3", "4", "5", "6", "7", "8"} and set(curves["fixed_2"][0]["mse"]) == {"2"}
    assert all({"updates", "wall_s", "mse"} <= set(p) for p in curves["flexlam"])
    assert result["compute"]["minigrid"]["models_replaced"] == 4 and result["compute"]["minigrid"]["fixed_flops"] > 0
    assert len(result["code_usage"]["minigrid"]["flexlam"]) == 8 and len(result["code_usage"]["minigrid"]["fixed_2"]) == 2
    assert result["versions"]["torch"] and result["command"].startswith("flexlam-bench")
    if THREADS == 1:  # the committed smoke seeds were made with one thread (it changes how convolutions sum)
        from conftest import assert_same_numbers

        for suite in ("minigrid", "reach"):  # the shipped code reproduces them (issue 48 contract), wall times aside:
            # bit for bit on the machine that made them; 1e-4 leaves room for another CPU rounding last bits differently
            committed = json.loads((ROOT / "benchmarks/results/smoke/seeds" / f"{suite}_seed0.json").read_text())["metrics"]
            again = json.loads((out / "seeds" / f"{suite}_seed0.json").read_text())["metrics"]
            assert_same_numbers(_without_wall_times(again), _without_wall_times(committed), suite, rel=1e-4)
    seed_file = json.loads((out / "seeds" / "minigrid_seed0.json").read_text())
    assert set(seed_file["code"]) == {"commit", "clean"} and seed_file["versions"]["torch"]  # the code that made it
    assert seed_file["machine"]["cpu"] and seed_file["machine"]["cores"] >= 1  # and the CPU: numerics depend on its kind
    assert result["code"]["mixed"] is None and result["code"]["commit"] == seed_file["code"]["commit"]
    assert list(result["machines"].values()) == [sorted(p.name for p in (out / "seeds").glob("*.json"))]  # one machine made all
    assert "Machines: " in (out / "results.md").read_text()
    md = (out / "results.md").read_text()
    assert "View `equal_updates`, each model to its own plateau" in md and "View `equal_compute`" in md
    assert "plateaued" in md and "Too few seeds" in md
    baselines = result["baselines"]  # latent BC read against random, expert and true-action BC play, per task
    assert set(baselines) == {"minigrid", "reach"}
    assert set(baselines["minigrid"]) == {"minigrid-empty", "minigrid-doorkey", "minigrid-lavagap"}
    empty = baselines["minigrid"]["minigrid-empty"]
    assert empty["expert"] > empty["random"] and empty["true_action_bc"] is not None and len(empty["latent_bc_normalized_range"]) == 2
    low, high = empty["latent_bc_range"]
    assert empty["latent_bc_normalized_range"][1] == pytest.approx((high - empty["random"]) / (empty["expert"] - empty["random"]))
    assert "Latent BC beside random, expert and true-action BC play" in md and "| minigrid | minigrid-empty |" in md
    for plot in ("budget_curves.png", "learning_curves.png"):
        assert (out / plot).stat().st_size > 10_000
    assert {p.name for p in (out / "gifs").iterdir()} >= {"minigrid_flexlam_k2.gif", "minigrid_fixed_k2.gif"}

    again = run_bench("scale=smoke", f"out_dir={out}", cwd=tmp_path)  # cached: only re-aggregates
    assert again.returncode == 0 and again.stdout.count("already done") == 4
    report = run_bench("scale=smoke", f"out_dir={out}", "report_only=true", cwd=tmp_path)
    assert report.returncode == 0 and "equal_updates: FlexLAM better in" in report.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_games_scale_scores_diagnostics_and_suites_without_an_expert(tmp_path: Path) -> None:
    """The games path at tiny size: changed-pixel error and controllability per budget as claims; a suite with no
    expert data (as Procgen) is aligned and scored on every behaviour's held-out episodes, without latent BC."""
    pytest.importorskip("ale_py")
    out = tmp_path / "games"
    run = run_bench("scale=games_smoke", f"out_dir={out}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads((out / "results.json").read_text())
    summary = result["summary"]["equal_updates"]
    assert set(summary["atari"]) == {"recon", "recon_changed", "controllability", "align", "align_balanced", "bc_return"}
    assert set(summary["pong"]) == {"recon", "recon_changed", "controllability", "align", "align_balanced"}
    cells = {(c["suite"], c["metric"], c["protocol"]) for c in result["claims"] if c["view"] == "equal_updates"}
    assert ("pong", "align", "standard") in cells and not any(s == "pong" and p == "low_return" for s, _, p in cells)
    assert ("atari", "align", "low_return") in cells and ("atari", "controllability", "any") in cells
    assert {"atari_predictions.gif", "pong_predictions.gif"} <= {p.name for p in (out / "gifs").iterdir()}
    # Breakout and Pong act differently: a translator each, so a score per game (standard labels come from both
    # games, the stress test's from Breakout alone); latent BC plays each game with its own translator
    atari = json.loads((out / "seeds" / "atari_seed0.json").read_text())["metrics"]
    align, bc = atari["values"]["equal_updates"]["align"], atari["values"]["equal_updates"]["bc_return"]
    assert all(len(v) == 2 for m in align["standard"].values() for v in m.values())
    assert all(len(v) == 1 for m in align["low_return"].values() for v in m.values())
    assert all(len(v) == 2 for m in bc["standard"].values() for v in m.values())
    assert all(len(v) == 1 for m in bc["low_return"].values() for v in m.values())
    from flexlam_rl.bench.run import SeedWork
    from flexlam_rl.bench.spec import load_scale

    cfg = load_scale("games_smoke")
    work = SeedWork.prepare(cfg, cfg.suites[0], 0, print)
    assert [g.tasks for g in work.groups] == [["breakout"], ["pong"]]
    assert sum(g.transitions for g in work.groups) == len(work.data.train)
    assert all(g.label_count == max(1, round(cfg.label_fraction * g.transitions)) for g in work.groups)
    assert atari["labels"]["count"] == work.label_count
    assert [g.tasks for g in SeedWork.prepare(cfg, cfg.suites[1], 0, print).groups] == [["pong"]]
    seed = json.loads((out / "seeds" / "pong_seed0.json").read_text())
    control = seed["metrics"]["values"]["equal_updates"]["controllability"]["any"]
    assert set(control) == {"flexlam", "fixed"} and all(math.isfinite(v) and v <= 1 for v in control["flexlam"].values())
    suite = SuiteSpec(name="pong", tasks=["pong"], frame_size=64, data={"random": {"episodes": 2}}, stress_task="pong",
                      max_episode_steps=40)
    assert suite.dataset_id("pong", "random").endswith("random-2ep-T40-v0")  # named by the episode cap, never stale
    with pytest.raises(ValueError, match="stress_task 'breakout' is not one of its tasks"):
        SuiteSpec(name="x", tasks=["pong"], frame_size=64, data={}, stress_task="breakout")


@pytest.mark.slow
def test_unknown_suite_and_missing_results_are_clear_errors(tmp_path: Path) -> None:
    run = run_bench("scale=smoke", "only=[nope]", f"out_dir={tmp_path / 'x'}", cwd=tmp_path)
    assert run.returncode == 2 and "unknown suites ['nope']" in run.stderr
    run = run_bench("scale=smoke", "report_only=true", f"out_dir={tmp_path / 'empty'}", cwd=tmp_path)
    assert run.returncode == 2 and "No finished seeds" in run.stderr


def _seed_run(flex: float, fixed: float, bc_flex: list[float], bc_fixed: list[float]) -> dict:
    """One seed's saved metrics for a 2-budget suite, the same in both views."""
    per_k = lambda v: {"1": v, "2": v}  # noqa: E731
    values = {"recon": {"any": {"flexlam": per_k(flex), "fixed": per_k(fixed)}},
              "bc_return": {"standard": {"flexlam": per_k(bc_flex), "fixed": per_k(bc_fixed)}}}
    model = {"updates": 100, "wall_s": 1.0, "plateaued": True, "flops": 1e9, "samples": 6400,
             "curve": [{"updates": 50, "wall_s": 0.5, "mse": {"1": flex}}]}
    return {"values": {"equal_updates": values, "equal_compute": values},
            "models": {"flexlam": model, "fixed_1": {**model, "plateaued": False}, "fixed_2": model},
            "code_usage": {"flexlam": [2.0, 3.0]}}


def test_aggregation_pairs_seeds_and_decides_each_cell() -> None:
    seeds = list(range(10))
    cfg = BenchConfig(name="t", suites=[SuiteSpec("s", ["cartpole"], 32, {}, "cartpole")], seeds=seeds,
                      budgets=[1, 2], num_tokens=2, date_fixed="2026-12-01")
    stats = mean_se([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["se"] == pytest.approx(1 / math.sqrt(3))
    runs = {seed: _seed_run(1.0 + 0.01 * seed, 2.0 + 0.01 * seed, [0.5, 0.9 + 0.01 * seed], [0.5, 0.5]) for seed in seeds}
    result = aggregate({"s": runs}, cfg)
    recon = [c for c in result["claims"] if c["metric"] == "recon" and c["view"] == "equal_updates"]
    assert [c["verdict"] for c in recon] == ["better", "better"]  # lower error is better: FlexLAM wins every seed
    assert all(c["diff"] == pytest.approx(-1.0) and c["n_seeds"] == 10 for c in recon)
    assert all(c["p_value"] == pytest.approx(2 / 1024) and c["verdict_adjusted"] == "better" for c in recon)
    assert all(c["ci95"][0] <= -1.0 <= c["ci95"][1] and c["half_width"] == pytest.approx(0.0, abs=1e-6) for c in recon)
    bc = [c for c in result["claims"] if c["metric"] == "bc_return" and c["k"] == 1 and c["view"] == "equal_updates"][0]
    assert bc["diff"] == pytest.approx(0.2225) and bc["verdict"] == "better"  # per-task pairs: 0 on one task, +0.4.. on the other
    assert bc["capped"]  # fixed_1 hit its update cap: the cell says so
    assert result["counts"]["equal_updates"] == result["counts_raw"]["equal_updates"] == {"better": 4, "tie": 0, "worse": 0}
    assert result["protocol"]["date_fixed"] == "2026-12-01" and result["protocol"]["n_seeds"] == 10
    assert result["protocol"]["null_verdict_rate"] <= 0.05 and result["protocol"]["min_p_value"] == pytest.approx(2 / 1024)
    assert result["learning_curves"]["s"]["flexlam"][0]["n_seeds"] == 10
    assert result["compute"]["s"]["fixed_over_flexlam_flops"] == pytest.approx(2.0)
    assert result["models"]["s"][0]["flexlam"]["final_change"] is None  # one check: no slope to read


COMMITTED = sorted(p.parent.name for p in (ROOT / "benchmarks/results").glob("*/results.json") if (p.parent / "seeds").is_dir())


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_are_the_aggregate_of_their_saved_seeds(name: str) -> None:
    """A committed results.json (verdicts, counts, curves) is what today's aggregation makes of the per-seed files
    committed beside it, under the config it records: no result was typed, edited or left stale."""
    from conftest import assert_same_numbers

    from flexlam_rl.bench.report import saved_seeds
    from flexlam_rl.config import parse_config

    folder = ROOT / "benchmarks/results" / name
    saved = json.loads((folder / "results.json").read_text())
    per_seed, _ = saved_seeds(folder, saved["suite_keys"])
    assert {suite: sorted(seeds) for suite, seeds in per_seed.items()} == saved["seeds_done"]
    again = json.loads(json.dumps(aggregate(per_seed, parse_config(BenchConfig, saved["config"], "scale"))))
    # keys a claim gained after the file was made (labels, updates, noninferior) are read, not compared
    again["claims"] = [{key: new[key] for key in old} for new, old in zip(again["claims"], saved["claims"])]
    for key in ("claims", "counts", "counts_raw", "summary", "learning_curves", "models", "compute"):
        assert_same_numbers(again[key], saved[key], f"{name}.{key}")


def test_adjusted_verdicts_and_confirmatory_cells() -> None:
    """BH across a view's cells turns weak raw verdicts into ties; named cells are adjusted among themselves."""
    from flexlam_rl.bench.report import adjust_verdicts, confirmatory, confirmatory_table

    def cell(view: str, k: int, p: float, diff: float = 0.1, secondary: bool = False) -> dict:
        return {"view": view, "suite": "s", "metric": "align", "protocol": "standard", "k": k, "diff": diff, "p_value": p,
                "higher_is_better": True, "secondary": secondary, "verdict": "better" if p <= 0.05 else "tie",
                "ci95": [0.01, 0.19], "flexlam": 0.6, "fixed": 0.5, "n_seeds": 10}

    claims = [cell("a", 1, 0.002), cell("a", 2, 0.04), *(cell("a", k, 0.5) for k in range(3, 11)), cell("a", 11, 0.01, secondary=True),
              cell("b", 1, 0.04)]
    adjust_verdicts(claims)
    assert [c["verdict_adjusted"] for c in claims[:2]] == ["better", "tie"]  # 0.04 > 2/10 * 0.05 after BH over 10 cells
    assert claims[10]["verdict_adjusted"] == "better" and claims[11]["verdict_adjusted"] == "better"  # families of one
    named = confirmatory(claims, [{"suite": "s", "metric": "align", "protocol": "standard", "k": 2, "view": "a"},
                                  {"suite": "s", "metric": "align", "protocol": "standard", "k": 99, "view": "a"}])
    assert named[0]["verdict_adjusted"] == "better" and named[1]["missing"]  # alone, p = 0.04 stands
    table = confirmatory_table(named).splitlines()
    assert "| 0.600 vs 0.500 | +0.100 [+0.010, +0.190] | 0.0400 | 10 | better |" in table[2] and "not run" in table[3]
    assert claims[1]["verdict_adjusted"] == "tie"  # the view's own adjustment is untouched


def test_final_change_reads_the_plateau_statistic_from_a_curve() -> None:
    """A capped model's slope at the cap: last window's mean loss against the one before, over its budgets."""
    losses = [9, 9, 9, 9, 1.1, 1.0, 1.0, 0.9, 1.0, 0.9, 0.9, 0.8]
    curve = [{"updates": 250 * (i + 1), "mse": {"1": 2.0 * v, "2": v}} for i, v in enumerate(losses)]
    change = final_change(curve, window=4)
    assert change == pytest.approx(3.6 / 4.0 - 1.0)  # mean over k scales both windows alike
    assert final_change(curve[:7], window=4) is None
    model = {"updates": 3000, "wall_s": 1.0, "plateaued": False, "flops": 1e9, "samples": 1, "equal_compute": {"updates": 3000}}
    table = models_table({"models": {"s": {0: {"flexlam": {**model, "final_change": change}}}}})
    assert "-10.0% (-10.0..-10.0)" in table and "0/1" in table


def test_saved_seeds_and_cached_runs_keep_their_keys_when_settings_are_added() -> None:
    """Settings added later, left at their defaults, must not make committed seeds (or cached LAMs) stale."""
    from dataclasses import replace

    from flexlam_rl.bench.cache import lam_key_record
    from flexlam_rl.bench.run import suite_key
    from flexlam_rl.bench.spec import load_scale
    from flexlam_rl.config import LAMConfig

    cfg = load_scale("default")
    for suite in cfg.suites:
        saved = json.loads((ROOT / "benchmarks/results/default/seeds" / f"{suite.name}_seed0.json").read_text())
        assert suite_key(cfg, suite) == saved["config_key"], f"{suite.name}: a setting added to the scale changed the key"
    lam = LAMConfig(obs_shape=[16, 16, 3])
    assert "code_norm" not in lam_key_record(lam) and lam_key_record(replace(lam, code_norm=True))["code_norm"] is True
    assert "idm_downsample" not in lam_key_record(lam)
    assert lam_key_record(replace(lam, idm_downsample="maxpool"))["idm_downsample"] == "maxpool"


def test_dataset_ids_change_with_what_is_collected() -> None:
    from flexlam_rl.bench import SuiteSpec
    from flexlam_rl.data.sources import validate_dataset_id

    small = SuiteSpec("s", ["minigrid-empty"], 32, {"noisy": {"episodes": 3, "epsilon": 0.5}}, "minigrid-empty")
    big = SuiteSpec("s", ["minigrid-empty"], 32, {"noisy": {"episodes": 30, "epsilon": 0.5}}, "minigrid-empty")
    ids = {small.dataset_id("minigrid-empty", "noisy"), big.dataset_id("minigrid-empty", "noisy")}
    assert len(ids) == 2 and all(validate_dataset_id(i) for i in ids)


def test_sign_flip_test_is_exact_and_its_interval_is_the_unrejected_shifts() -> None:
    from scipy import stats as scipy_stats

    from flexlam_rl.bench.stats import exact_null_rate, min_p_value, paired_test, verdict

    rng = np.random.default_rng(0)
    for n in (6, 8, 10):
        diffs = rng.normal(0.4, 1.0, size=n)
        test = paired_test(diffs)
        exact = scipy_stats.permutation_test((diffs,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
        assert test.p_value == pytest.approx(exact)
        low, high = test.ci
        for edge, outward in ((low, -1e-6), (high, 1e-6)):  # just inside: not rejected; just outside: rejected
            assert paired_test(diffs - (edge - outward)).p_value > 0.05 and paired_test(diffs - (edge + outward)).p_value <= 0.05
        assert test.half_width == pytest.approx((high - low) / 2)
    per_task = rng.normal(size=(10, 3))
    assert paired_test(per_task).p_value == pytest.approx(paired_test(per_task.mean(axis=1)).p_value)  # a seed is the unit
    up = 0.1 + 0.01 * rng.normal(size=10)
    test = paired_test(up)
    assert test.p_value == pytest.approx(min_p_value(10)) and verdict(test, True) == "better" and verdict(test, False) == "worse"
    five = paired_test(up[:5])  # below 6 seeds the exact test cannot reach 5%: a tie with no interval
    assert five.p_value == pytest.approx(1 / 16) and five.ci is None and verdict(five, True) == "tie"
    assert verdict(paired_test(np.array([0.4])), True) == "pending" and verdict(paired_test(np.zeros(10)), True) == "tie"
    assert exact_null_rate(10) == pytest.approx(50 / 1024) and exact_null_rate(5) == 0.0


@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_null_cells_get_at_most_five_percent_verdicts_with_tasks_correlated_through_the_seed(noise: str) -> None:
    """2000 cells with no true difference (10 seeds x 3 tasks sharing each seed's noise) through the benchmark's
    test: at most 5% verdicts. A test that treats the 30 (seed, task) pairs as independent, measured the same way,
    gives far more: the simulation can tell a miscalibrated procedure."""
    from scipy import stats as scipy_stats

    from flexlam_rl.bench.stats import paired_test, simulate_null_cells, verdict

    cells = simulate_null_cells(10, n_tasks=3, cells=2000, task_correlation=0.5, noise=noise, seed=11)
    rate = np.mean([verdict(paired_test(c), True) != "tie" for c in cells])
    assert rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / len(cells))
    naive = np.mean([scipy_stats.ttest_1samp(c.ravel(), 0.0).pvalue <= 0.05 for c in cells])
    assert naive > 0.12


def test_benjamini_hochberg_and_the_simulated_null_rate() -> None:
    from flexlam_rl.bench.stats import benjamini_hochberg, exact_null_rate, null_verdict_rate

    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, float("nan")]
    assert benjamini_hochberg(p).tolist() == [True, True, False, False, False, False, False, False, False]
    assert benjamini_hochberg([0.01, 0.02, 0.03]).all()  # all below their step: all rejected
    assert not benjamini_hochberg([]).any()
    rate = null_verdict_rate(10, cells=20_000)
    assert abs(rate - exact_null_rate(10)) < 0.006 and null_verdict_rate(5, cells=2000) == 0.0


def test_mean_curves_keep_wall_time_monotone_when_seeds_stop_at_different_points() -> None:
    """A slow seed that stops early must not pull the mean curve's wall time back."""
    def run(points: list[tuple[int, float, float]]) -> dict:
        curve = [{"updates": u, "wall_s": w, "mse": {"1": m}} for u, w, m in points]
        return {"models": {"flexlam": {"curve": curve}}}
    curves = _mean_curves({0: run([(100, 10.0, 4.0), (200, 20.0, 2.0)]), 1: run([(100, 50.0, 6.0)])})["flexlam"]
    assert [p["n_seeds"] for p in curves] == [2, 1] and [p["mse"]["1"] for p in curves] == [5.0, 2.0]
    assert [p["wall_s"] for p in curves] == pytest.approx([30.0, 60.0])  # 0.1 and 0.5 s/update: 0.3 on average


def test_median_interval_covers_the_median_at_its_level_and_orders_censored_seeds() -> None:
    """Order-statistic interval: over 4000 samples of 10 skewed values it covers the true median at least 95% of
    the time (exactly 0.979 in theory), a seed that never catches up (+inf) is ranked last, and 4 values give none."""
    from flexlam_rl.bench.stats import median_interval

    rng = np.random.default_rng(3)
    true_median = np.log(2)  # exponential(1)
    hits = []
    for _ in range(4000):
        _, (low, high) = median_interval(rng.exponential(size=10))
        hits.append(low <= true_median <= high)
    assert 0.97 < np.mean(hits) < 0.99
    median, ci = median_interval([5.0, 1.0, 2.0, np.inf, 3.0, 4.0, 6.0, 7.0, 8.0, np.inf])
    assert median == 5.5 and ci == (2.0, np.inf)
    assert median_interval([1.0, 2.0, 3.0, 4.0])[1] is None


def test_the_games_scale_trains_lam_games_under_the_default_protocol() -> None:
    """scale=games (issue 22) must be the shipped pixel-game recipe (lam=games) under scale=default's statistics and
    stop rule, with only the cap and the batch changed: settings fixed before the run, checked so they cannot drift."""
    from flexlam_rl.bench.spec import load_scale
    from flexlam_rl.config import LAMConfig
    from flexlam_rl.pretrain.train import lam_preset

    games, default = load_scale("games"), load_scale("default")
    preset = lam_preset("games")
    assert {k: preset[k] for k in games.lam} == games.lam
    shaped_by_the_bench = {"num_tokens", "nested_dropout", "obs_shape", "obs_dtype", "preprocess"}
    recipe = {k for k, v in preset.items() if k not in shaped_by_the_bench and v != getattr(LAMConfig, k, v)}
    assert recipe <= set(games.lam), f"lam=games sets {sorted(recipe - set(games.lam))} that scale=games leaves out"
    assert games.seeds == default.seeds and games.budgets == default.budgets and games.protocols == default.protocols
    rule = ("until_plateau", "eval_every", "eval_transitions", "plateau_window", "plateau_tol", "plateau_decays", "plateau_lr_factor")
    assert {k: games.train[k] for k in rule} == {k: default.train[k] for k in rule}
    assert games.train["batch_size"] == 32 and games.train["max_steps"] < default.train["max_steps"]
    assert games.date_fixed and games.diagnostics and games.prediction_gifs
    assert all(s.frame_size == 64 and s.has_expert for s in games.suites)


def test_seed_files_made_by_different_code_are_refused_unless_allowed_and_then_said(tmp_path: Path) -> None:
    """A report of seed files from two commits is not one result: refused before anything is written, naming the
    files of each commit; allow_mixed_code aggregates them and results.md says so."""
    import shutil

    from flexlam_rl.bench.report import seeds_code, write_reports
    from flexlam_rl.config import parse_config
    from flexlam_rl.errors import DataError

    source = ROOT / "benchmarks/results/confirm"
    saved = json.loads((source / "results.json").read_text())
    shutil.copytree(source / "seeds", tmp_path / "seeds")
    files = sorted((tmp_path / "seeds").glob("*.json"))
    for i, path in enumerate(files):  # two commits, as a resumed run across a code change would leave
        record = json.loads(path.read_text())
        record["code"] = {"commit": ("a" if i < 3 else "b") * 40, "clean": True}
        path.write_text(json.dumps(record))
    cfg = parse_config(BenchConfig, saved["config"], "scale")
    with pytest.raises(DataError, match=rf"different code \(commit aaaaaaaaaaaa: {files[0].name}.*commit bbbbbbbbbbbb: .*allow_mixed_code"):
        write_reports(cfg, tmp_path, "cmd", saved["suite_keys"])
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "results.md").exists()
    result = write_reports(cfg, tmp_path, "cmd", saved["suite_keys"], allow_mixed_code=True)
    assert result["code"]["commit"] is None and sorted(result["code"]["mixed"]) == ["commit aaaaaaaaaaaa", "commit bbbbbbbbbbbb"]
    assert "MIXED code" in (tmp_path / "results.md").read_text()
    assert seeds_code({"x.json": None, "y.json": None}, tmp_path) == {"commit": None, "clean": None, "mixed": None}  # made before
    one = {"commit": "c" * 40, "clean": False}
    assert seeds_code({"x.json": one, "y.json": one}, tmp_path) == {**one, "mixed": None}


def test_noninferiority_decides_against_the_margin_and_all_zero_seeds_carry_no_information() -> None:
    from flexlam_rl.bench import stats

    rng = np.random.default_rng(0)
    close = rng.normal(0.0, 0.02, 10)  # FlexLAM about as good: non-inferior at a margin of 0.1, not at 0.001
    assert stats.noninferiority(close, 0.1, higher_is_better=True).noninferior
    assert not stats.noninferiority(close - 0.2, 0.1, higher_is_better=True).noninferior  # clearly worse by more
    assert stats.noninferiority(close + 0.05, 0.1, higher_is_better=False).noninferior  # an error 0.05 higher: within 0.1
    assert stats.noninferiority(close + 0.15, 0.1, higher_is_better=False).noninferior is False  # 0.15 higher: beyond it
    lower_error = stats.noninferiority(close - 0.5, 0.1, higher_is_better=False)  # lower error is better: far better
    assert lower_error.noninferior and lower_error.p_value == pytest.approx(1 / 1024)
    none = stats.noninferiority(np.zeros((10, 3)), 0.1, higher_is_better=True)
    assert none.no_information and none.noninferior is None and none.p_value is None
    assert stats.noninferiority(np.array([0.3]), 0.1, True).noninferior is None  # one seed: no test
    with pytest.raises(ValueError, match="margin must be > 0"):
        stats.noninferiority(close, 0.0, True)
    assert list(stats.holm_adjusted([0.004, 0.011, 0.03, 0.5])) == pytest.approx([0.016, 0.033, 0.06, 0.5])
    assert list(stats.holm([0.004, 0.011, 0.03, float("nan")])) == [True, True, True, False]  # 3 tested: 0.03 <= 0.05 / 1


def test_a_skewed_cell_is_decided_at_a_level_calibrated_to_its_shape() -> None:
    """Left-skewed differences whose true mean sits exactly at -margin: the plain one-sided sign-flip test calls
    FlexLAM non-inferior far more often than its 2.5%; the shape check and calibrated level pull that down, and
    symmetric (normal) cells keep the plain test's rate."""
    from flexlam_rl.bench import stats

    rng = np.random.default_rng(3)
    flips = stats.sign_patterns(10)
    plain, checked, normal = [], [], []
    for _ in range(300):
        d = (1 - rng.exponential(size=10)) - 1.0  # mean -1 = -margin, long left tail
        plain.append(stats.one_sided_p((d + 1.0)[:, None], flips)[0] <= stats.NI_ALPHA)
        checked.append(stats.noninferiority(d, 1.0, True).noninferior)
        normal.append(stats.noninferiority(rng.standard_normal(10) - 1.0, 1.0, True).noninferior)
    assert np.mean(plain) > 0.06 and np.mean(checked) < np.mean(plain) - 0.015
    assert np.mean(normal) < 0.06
    assert stats.power(1.0, 10, margin=1.0) == pytest.approx(0.8, abs=0.04)  # (1.96 + 0.84)^2 / 10 ~ 0.78: about 0.8
    assert stats.power(1.0, 20, margin=1.0) > stats.power(1.0, 10, margin=1.0)


def _primary_cfg(seeds: list[int], **extra) -> BenchConfig:
    return BenchConfig(name="p", suites=[SuiteSpec("s", ["cartpole"], 32, {}, "cartpole")], seeds=seeds, budgets=[1, 2],
                       num_tokens=2, protocols=["standard"], date_fixed="2026-12-07", margins={"bc_return": 0.1},
                       primary=["s/standard/bc_return"], **extra)


def test_the_primary_protocol_reports_endpoints_noninferiority_and_updates() -> None:
    seeds = list(range(10, 20))
    runs = {seed: _seed_run(1.0, 1.0, [0.5, 0.6 + 0.001 * seed], [0.5, 0.6]) for seed in seeds}
    result = aggregate({"s": runs}, _primary_cfg(seeds, exploration_seeds=list(range(10))))
    protocol = result["protocol"]
    assert protocol["date_fixed"] == "2026-12-07" and protocol["primary"] == ["s/standard/bc_return"]
    assert protocol["margins"] == {"bc_return": 0.1} and protocol["seeds"] == seeds
    [endpoint] = result["primary"]
    assert {"suite", "labels", "metric", "diff", "ci95", "p_value", "p_adjusted", "verdict"} <= set(endpoint)
    assert endpoint["verdict"] == "better" and endpoint["p_adjusted"] == pytest.approx(2 / 1024) and endpoint["noninferior"]
    cells = [c for c in result["claims"] if c["metric"] == "bc_return" and c["view"] == "equal_updates"]
    assert all(c["noninferior"] and c["labels"] == "standard" and c["updates"] == {"flexlam": 100.0, f"fixed_{c['k']}": 100.0}
               for c in cells)
    recon = [c for c in result["claims"] if c["metric"] == "recon"]
    assert all(c["verdict"] == "no information" and c["noninferior"] is None for c in recon)  # identical errors every seed
    assert result["counts"]["equal_updates"] == {"better": 2, "tie": 0, "worse": 0, "no information": 2}
    with pytest.raises(ConfigError, match=r"seeds \[10\] were already read"):
        _primary_cfg([10, 11], exploration_seeds=[10])
    with pytest.raises(ConfigError, match="primary endpoint 's/low/bc_return' must read suite/labels/metric"):
        BenchConfig(name="p", suites=[SuiteSpec("s", ["cartpole"], 32, {}, "cartpole")], seeds=[1], budgets=[1], num_tokens=1,
                    margins={"bc_return": 0.1}, primary=["s/low/bc_return"])
    from flexlam_rl.bench.spec import load_scale

    shipped = load_scale("primary")
    assert not set(shipped.seeds) & set(range(10)) and len(shipped.primary) == 8


def test_seed_files_made_under_different_protocols_are_refused_naming_them(tmp_path: Path) -> None:
    from flexlam_rl.bench.report import protocol_key, write_reports
    from flexlam_rl.errors import DataError

    seeds = [10, 11, 12]
    cfg = _primary_cfg(seeds)
    (tmp_path / "seeds").mkdir()
    for seed in seeds:
        protocol = protocol_key(cfg) if seed != 12 else {**protocol_key(cfg), "margins": {"bc_return": 0.2}}
        record = {"config_key": "k", "seed": seed, "suite": "s", "protocol": protocol, "metrics": _seed_run(1.0, 1.0, [0.5], [0.5])}
        (tmp_path / "seeds" / f"s_seed{seed}.json").write_text(json.dumps(record))
    with pytest.raises(DataError, match=r"different protocols .*0\.1.*s_seed10\.json, s_seed11\.json; .*0\.2.*: s_seed12\.json"):
        write_reports(cfg, tmp_path, "cmd", {"s": "k"})
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "results.md").exists()


def test_every_result_names_a_script_that_exists_or_is_retired() -> None:
    """A committed result is a finding only with the script that made it: each ``benchmarks/<name>.py`` that a
    results file's command names is in ``benchmarks/`` or listed, with the commit that holds it, on the retired
    page (and the page lists no script that still exists)."""
    import re

    retired_page = (ROOT / "docs/benchmarks/retired.md").read_text()
    retired = dict(re.findall(r"^\| `benchmarks/(\w+)\.py` \| ([0-9a-f]{7,40}) \|", retired_page, re.M))
    assert retired and not [name for name in retired if (ROOT / "benchmarks" / f"{name}.py").exists()]
    named = set()
    for path in (ROOT / "benchmarks/results").rglob("*.json"):
        text = path.read_text()
        named |= {(m, path.relative_to(ROOT).as_posix()) for m in re.findall(r"python benchmarks/(\w+)\.py", text)}
    missing = sorted((path, name) for name, path in named if name not in retired and not (ROOT / "benchmarks" / f"{name}.py").exists())
    assert not missing, f"results whose script is neither in benchmarks/ nor on docs/benchmarks/retired.md: {missing[:5]}"
    assert {name for name, _ in named} >= set(retired)  # a retired script made something committed


def test_experiment_resumes_units_and_records_what_wrote_its_results(tmp_path) -> None:
    """A unit is computed once and read back after (a cut run resumes there); each unit and the results record the
    code; a report-only rebuild keeps the commands that made units and adds none."""
    from flexlam_rl.bench.experiment import Experiment

    calls = []
    exp = Experiment(tmp_path / "out", "benchmarks/x.py", ["--seed", "1"])
    first = exp.unit("a_s1", lambda: calls.append(1) or {"value": np.float32(0.5)}, log=False)
    again = Experiment(tmp_path / "out", "benchmarks/x.py", ["--seed", "1"]).unit("a_s1", lambda: calls.append(2) or {}, log=False)
    assert calls == [1] and first == again and first["value"] == 0.5 and "commit" in first["code"]
    assert first["machine"]["cpu"] and first["machine"]["capability"]  # numerics depend on the CPU kind
    saved = exp.write({"commands": exp.commands(), "runs": exp.saved()}, "# x\n")
    assert saved["commands"] == ["python benchmarks/x.py --seed 1"] and saved["report"]["command"] == saved["commands"][0]
    assert json.loads((tmp_path / "out/results.json").read_text()) == saved and (tmp_path / "out/results.md").read_text() == "# x\n"
    rebuild = Experiment(tmp_path / "out", "benchmarks/x.py", ["--report-only"])
    assert rebuild.commands(report_only=True) == saved["commands"]
    assert not list((tmp_path / "out").rglob("*.tmp"))


@pytest.mark.parametrize("folder", ["adaptive", "throughput_games", "throughput_games_memory_format", "games_recipe"])
def test_committed_benchmark_pages_are_what_the_library_writes_from_their_results(folder: str) -> None:
    """A results.md is generated, never edited: the library's report rebuilds it from the committed results (or, for
    the games ablation, from its saved runs) word for word."""
    from flexlam_rl.bench import adaptive, games, throughput
    from flexlam_rl.bench.experiment import Experiment

    path = ROOT / "benchmarks/results" / folder
    result = json.loads((path / "results.json").read_text())
    if folder == "adaptive":
        text = adaptive.report(result)
    elif folder == "games_recipe":
        exp = Experiment(path, "benchmarks/games.py", units="per_run")
        _, text = games.recipe_report(games.run_all(exp, [], [], [], 0), result["commands"])
    else:
        text = throughput.report(result)
    assert text == (path / "results.md").read_text()
