"""What a benchmark run is: its suites (tasks + action-free data), seeds, budgets and settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..align import PROTOCOLS
from ..config import parse_config
from ..errors import ConfigError

METRICS = {  # name -> (higher is better, label)
    "recon": (False, "held-out next-frame MSE"),
    # scored where a scale sets ``diagnostics: true`` (games: most of a frame is static, so a whole-frame error
    # hides what the tokens do; flexlam_rl.evaluate.diagnosis.controllability)
    "recon_changed": (False, "held-out next-frame MSE, changed pixels"),
    "controllability": (True, "controllability (own vs shuffled tokens)"),
    "align": (True, "translator accuracy / R^2"),
    # Discrete actions: accuracy averaged over the classes, which a constant answer cannot inflate (seed files before
    # 2026-12-07 lack it: their reports leave it out)
    "align_balanced": (True, "translator balanced accuracy"),
    "bc_return": (True, "latent BC return"),
    "ppo_return": (True, "PPO return (latent space)"),
}
SECONDARY_METRICS = ("ppo_return",)  # reported, never in the headline counts: short PPO runs cannot rank methods
VIEWS = ("equal_updates", "equal_compute")

# Episode i of a dataset resets with seed + i. Datasets get disjoint seed ranges (at most 1000 episodes
# each, 10 behaviours per task, 100 tasks per data seed), so no two datasets share a start state.
EPISODE_SEED_STRIDE = {"data_seed": 1_000_000, "task": 10_000, "behaviour": 1_000}


@dataclass
class SuiteSpec:
    """Tasks whose action-free data pretrain one LAM; ``stress_task`` gives low-return labels and PPO."""

    name: str
    tasks: list[str]
    frame_size: int
    data: dict[str, dict[str, Any]]  # behaviour -> {episodes, epsilon?}
    stress_task: str
    ppo: bool = True
    max_episode_steps: int | None = None  # cap on data, latent BC and PPO episodes (None: the task's own)
    protocols: list[str] | None = None  # label protocols for this suite (None: the scale's); low_return needs returns
    # also probe each model's first tokens for the action and for the distractors (flexlam_rl.evaluate.probes; a stress task with
    # action-independent state: point-reach-pixels-d*, minigrid-dynamic); seed files: token_probes
    token_probes: bool = False

    def __post_init__(self) -> None:
        if self.stress_task not in self.tasks:
            raise ConfigError(f"suite {self.name}: stress_task {self.stress_task!r} is not one of its tasks {self.tasks}.")
        unknown = set(self.protocols or []) - set(PROTOCOLS)
        if unknown:
            raise ConfigError(f"suite {self.name}: unknown protocols {sorted(unknown)}; expected {PROTOCOLS}.")

    @property
    def has_expert(self) -> bool:
        """Expert data gives the alignment's evaluation set and latent BC's targets; without it (Procgen: no
        scripted expert) alignment is scored on held-out episodes of every behaviour and latent BC is skipped."""
        return "expert" in self.data

    def dataset_id(self, task: str, behaviour: str) -> str:
        """Names carry what was collected (frame size, episodes, epsilon, cap), so a changed scale never reuses stale data."""
        spec = self.data[behaviour]
        detail = f"{int(spec['episodes'])}ep" + (f"-eps{round(100 * float(spec['epsilon']))}" if "epsilon" in spec else "")
        detail += f"-T{self.max_episode_steps}" if self.max_episode_steps else ""
        return f"flexlam-bench/{self.name}-{self.frame_size}px/{task}/{behaviour}-{detail}-v0"

    def collection_seed(self, data_seed: int, task: str, behaviour: str) -> int:
        """The first episode seed of one dataset (see ``EPISODE_SEED_STRIDE``)."""
        return (data_seed * EPISODE_SEED_STRIDE["data_seed"] + self.tasks.index(task) * EPISODE_SEED_STRIDE["task"]
                + list(self.data).index(behaviour) * EPISODE_SEED_STRIDE["behaviour"])


@dataclass
class BenchConfig:
    """Everything that defines a benchmark run (recorded in results.json)."""

    name: str
    suites: list[SuiteSpec]
    seeds: list[int]
    budgets: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    num_tokens: int = 8
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))

    # the LAMs: LAMConfig fields besides shape/tokens/dropout, and TrainConfig fields
    lam: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    heldout_fraction: float = 0.1
    validation_fraction: float = 0.0  # of the training episodes: what the plateau rule reads (never the scored split)
    data_seed: int = 0
    date_fixed: str | None = None  # when this protocol was fixed (reported; not part of what results depend on)
    # Confirmatory cells named before the run ({suite, metric, protocol, k, view}): reported on their own,
    # adjusted only among themselves (reported; not part of what results depend on).
    confirm: list[dict[str, Any]] | None = None
    # The primary-endpoint protocol (issue 45; reported, not part of what results depend on): per metric, the
    # non-inferiority margin in the metric's units; the primary endpoints ("suite/labels/metric": the mean over
    # budgets of FlexLAM minus fixed), Holm-adjusted among themselves; and the seeds already read (never reused).
    margins: dict[str, float] | None = None
    primary: list[str] | None = None
    exploration_seeds: list[int] | None = None

    # alignment (AlignConfig fields) and latent BC (LatentBCTrainConfig fields)
    label_fraction: float = 0.02
    low_return_quantile: float = 0.25
    # the label-scarcity dial: sweep these instead (each value is its own protocol, e.g. "standard@0.005")
    label_fractions: list[float] | None = None
    low_return_quantiles: list[float] | None = None
    translator: dict[str, Any] = field(default_factory=dict)
    bc: dict[str, Any] = field(default_factory=dict)
    eval_episodes: int = 10

    # PPO in latent space
    ppo_steps: int = 5000
    ppo_n_envs: int = 4
    ppo_eval_episodes: int = 10

    gif_budget: int = 2
    gif_seed: int = 0  # the seed whose runs write the GIFs (parallel jobs must not race on them)
    # also a GIF per suite of real vs predicted next frames, one row per method and a column per budget, over a
    # held-out episode of the stress task (:func:`flexlam_rl.evaluate.inspect.prediction_gif`)
    prediction_gifs: bool = False
    # also score changed-pixel error and controllability per budget (METRICS recon_changed, controllability)
    diagnostics: bool = False
    diagnostic_transitions: int = 1024  # held-out transitions the diagnostics read (a fixed sample per seed)
    # action labels while every LAM trains (flexlam_rl.pretrain.supervision: head, tokens, weight, batch_size, share); the harness
    # sets the rest so the labels are the standard translator's at label_fraction (a suite with one action space only)
    supervision: dict[str, Any] | None = None
    # also a supervised IDM on every transition of the label pool, once per seed and alignment group: the ceiling
    # alignment is read against (seed files: idm_all_labels); its AlignConfig settings over the translator's ({}: the
    # translator's own, e.g. {steps: 2000} for an IDM trained longer than a translator)
    idm_ceiling: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.suites = [s if isinstance(s, SuiteSpec) else parse_config(SuiteSpec, s, "scale.suites[]") for s in self.suites]
        if any(k < 1 or k > self.num_tokens for k in self.budgets):
            raise ConfigError(f"budgets {self.budgets} must lie in 1..num_tokens={self.num_tokens}.")
        if len(self.seeds) < 1:
            raise ConfigError("Give at least one seed (>= 3 for standard errors worth reading).")
        unknown = set(self.protocols) - set(PROTOCOLS)
        if unknown:
            raise ConfigError(f"Unknown protocols {sorted(unknown)}; expected {PROTOCOLS}.")

        for value in [self.label_fraction, *(self.label_fractions or [])]:
            if not 0 < value <= 1:
                raise ConfigError(f"label fractions must be in (0, 1], got {value}.")
        for cell in self.confirm or []:
            missing = {"suite", "metric", "protocol", "k", "view"} - set(cell)
            if missing or cell.get("suite") not in [s.name for s in self.suites] or cell.get("metric") not in METRICS:
                raise ConfigError(f"confirm cells need suite (one of this scale's), metric ({', '.join(METRICS)}), protocol, k "
                                  f"and view; got {cell}.")
        self._check_primary()
        if self.supervision is not None:
            from ..pretrain.supervision import SupervisionConfig

            set_by_harness = {"fraction", "count", "seed", "heldout_fraction", "split_seed", "datasets"} & set(self.supervision)
            if set_by_harness:
                raise ConfigError(f"scale.supervision sets {sorted(set_by_harness)}, which the harness sets (the standard "
                                  f"labels at label_fraction); give head, tokens, weight, batch_size or share.")
            SupervisionConfig.from_dict({**self.supervision, "count": 1})  # bad values fail before any data is collected
        if not 0 <= self.validation_fraction < 1:
            raise ConfigError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}.")
        for value in [self.low_return_quantile, *(self.low_return_quantiles or [])]:
            if not 0 < value <= 1:
                raise ConfigError(f"low-return quantiles must be in (0, 1], got {value}.")

    def _check_primary(self) -> None:
        """Margins, primary endpoints and fresh seeds: all or none, each naming what this scale has."""
        if self.margins is None and self.primary is None:
            return
        if not self.margins or not self.primary:
            raise ConfigError("The primary-endpoint protocol needs both margins (metric -> margin) and primary (endpoints).")
        headline = [m for m in METRICS if m not in SECONDARY_METRICS]
        for metric, margin in self.margins.items():
            if metric not in headline or not float(margin) > 0:
                raise ConfigError(f"margins: {metric}={margin} needs a headline metric ({', '.join(headline)}) and a margin > 0.")
        labels = [run[0] for run in self.label_runs()]
        for name in self.primary:
            parts = name.split("/")
            if len(parts) != 3 or parts[0] not in [s.name for s in self.suites] or parts[1] not in labels or parts[2] not in self.margins:
                raise ConfigError(f"primary endpoint {name!r} must read suite/labels/metric with a suite of this scale "
                                  f"({', '.join(s.name for s in self.suites)}), labels in {labels} and a metric with a margin "
                                  f"({', '.join(self.margins)}).")
        reused = sorted(set(self.seeds) & set(self.exploration_seeds or []))
        if reused:
            raise ConfigError(f"seeds {reused} were already read (exploration_seeds); a confirmatory run takes fresh seeds.")

    def label_runs(self, suite: SuiteSpec | None = None) -> list[tuple[str, str, float, float]]:
        """Each alignment a model gets: ``(name, protocol, label fraction, low-return quantile)``.

        ``name`` is the protocol unless a dial sweeps it: ``standard@0.005`` (fraction of the training
        transitions labeled), ``low_return@q0.1`` (the return quantile the stress labels come from).
        A ``suite`` with its own ``protocols`` keeps only those.
        """
        runs = []
        for protocol in self.protocols:
            if suite is not None and suite.protocols is not None and protocol not in suite.protocols:
                continue
            if protocol == "standard":
                values = self.label_fractions or [self.label_fraction]
                runs += [(f"standard@{f:g}" if self.label_fractions else protocol, protocol, f, self.low_return_quantile)
                         for f in values]
            else:
                values = self.low_return_quantiles or [self.low_return_quantile]
                runs += [(f"{protocol}@q{q:g}" if self.low_return_quantiles else protocol, protocol, self.label_fraction, q)
                         for q in values]
        return runs

    @classmethod
    def from_scale(cls, scale: Any, name: str) -> BenchConfig:
        """The Hydra ``scale`` group (plus the run name) -> a validated config."""
        from ..config import plain

        return parse_config(cls, {**plain(scale), "name": name}, "scale")


def load_scale(scale: str = "default", overrides: Sequence[str] = ()) -> BenchConfig:
    """Compose ``configs/bench.yaml`` with ``scale=<scale>`` and Hydra ``overrides``, as ``flexlam-bench`` would."""
    from hydra import compose, initialize_config_module

    with initialize_config_module("flexlam_rl.configs", version_base="1.3"):
        cfg = compose("bench", overrides=[f"scale={scale}", *overrides])
    return BenchConfig.from_scale(cfg.scale, cfg.name)
