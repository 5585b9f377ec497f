"""The benchmarks, as library code. The token-budget benchmark: ``spec`` (what a run is), ``run`` (training and
scoring per suite and seed), ``cache`` (reusing trained models and runs), ``report`` (results.json/.md and plots),
``stats``. ``experiment``: the harness every script under ``benchmarks/`` writes through (run record, unit files,
atomic results). The other benchmarks: ``games`` (the games recipe and suite), ``acting`` (agents that play),
``labels`` (label selection), ``supervised`` (labels in pretraining), ``adaptive`` (adaptive budgets), ``throughput``
and ``numerics`` (the golden numerics run). Imported by name (``from flexlam_rl.bench import games``), not here:
they pull in what they need when used."""

from ..metrics import mean_se
from .report import aggregate, write_reports
from .run import collect_suite, lam_variants, model_at, run_benchmark, run_seed, suite_key
from .spec import METRICS, VIEWS, BenchConfig, SuiteSpec, load_scale

__all__ = [
    "METRICS",
    "VIEWS",
    "BenchConfig",
    "SuiteSpec",
    "aggregate",
    "collect_suite",
    "lam_variants",
    "load_scale",
    "mean_se",
    "model_at",
    "run_benchmark",
    "run_seed",
    "suite_key",
    "write_reports",
]
