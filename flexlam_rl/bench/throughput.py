"""Throughput: LAM training against the machine's fp32 matmul ceiling, and what latent actions cost per env step.

``benchmarks/throughput.py`` is the command line. In one run:

- ``matmul_gflops``: torch fp32 matmul at n = 1024, the ceiling the training rows are compared with.
- ``train``: one full training step of the real loop (:func:`flexlam_rl.pretrain.train.pretrain`: batches
  from a memory-mapped dataset cache, forward, backward, clipping, AdamW), for the benchmark-size
  (32 px, channels [8, 16, 32]), quickstart-size (64 px, [16, 32, 64]) and games-size (Breakout 64 px grayscale,
  [16, 32, 64], lam=games, batch 32 and 64) LAMs, FlexLAM and fixed,
  with the old setting (``fused_optimizer=False``) and the new default side by side. FLOPs are
  counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward.
- ``conv_layers``: every conv of one LAM (``--conv-model``: benchmark-size, or games-size at batch 32) timed
  alone, forward + backward: what oneDNN gives for these layer shapes, against the whole step.
- ``memory_format``: one update of that LAM (forward, backward, AdamW on fixed frames) with its weights
  contiguous and channels-last: whether oneDNN's native layout would speed up training.
- ``wrapper``: microseconds per env step, raw vs latent actions (k = 2), for a single env and for
  vector envs of 8 (SB3 ``DummyVecEnv`` and Gymnasium ``SyncVectorEnv``), on pixel
  MiniGrid-Empty-8x8 (64 px, the quickstart's LAM and translator sizes) and CartPole, with the old
  translation (``memoize=False``: everything recomputed each step) and the new default.

The machine is shared and noisy, so every configuration is timed ``--rounds`` times, interleaved,
and the median is reported. Untrained weights are used: they cost the same as trained ones.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..act.wrappers import LatentActionVectorWrapper, LatentActionWrapper
from ..agents import LatentActionVecEnv
from ..align import Translator, TranslatorConfig, action_spec
from ..config import Episodes, LAMConfig
from ..envs import get_task
from ..model.lam import FlexLAM
from ..pretrain.train import TrainConfig, lam_config_for, lam_preset, pretrain, update_flops
from ..tables import markdown_table

MODELS = {"benchmark": (32, [8, 16, 32]), "quickstart": (64, [16, 32, 64]), "games": (64, [16, 32, 64])}
SETTINGS = {"old": {"fused_optimizer": False}, "new": {}}
MINIGRID_ID = "MiniGrid-Empty-8x8-v0"
PIXELS = {"kind": "minigrid_rgb", "frame_size": 64, "tile_size": 8}
CONV_BATCH = {"benchmark": 64, "games": 32}  # each model's training batch in its table above


def conv_config(model: str) -> LAMConfig:
    """The LAM whose convs the conv table times: benchmark-size (32 px RGB) or lam=games on 64 px grayscale."""
    size, channels = MODELS[model]
    if model == "games":
        options = {k: v for k, v in lam_preset("games").items() if k != "name"}
        return LAMConfig.from_dict({**options, "obs_shape": [size, size, 1], "channels": channels,
                                    "preprocess": {"kind": "atari", "frame_size": size, "grayscale": True}})
    return LAMConfig(obs_shape=[size, size, 3], channels=channels, preprocess={"kind": "minigrid_rgb", "frame_size": size})


def matmul_gflops(n: int = 1024, reps: int = 30) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


# --------------------------------------------------------------------------- training
def training_data(root: Path, size: int, model: str):
    """A small dataset in a private Minari root: pixel MiniGrid DoorKey (epsilon-noised expert), or Breakout for
    the games-size LAM."""
    os.environ["MINARI_DATASETS_PATH"] = str(root / "minari")
    os.environ["FLEXLAM_RL_CACHE"] = str(root / "cache")
    from ..data.collect import ensure_dataset
    from ..data.transitions import load_transitions

    if model == "games":
        dataset_id, _ = ensure_dataset("throughput/breakout/noisy-v0", "breakout", "noisy", Episodes(10, 0, 200), epsilon=0.5)
    else:
        dataset_id, _ = ensure_dataset(f"throughput/doorkey{size}/noisy-v0", "minigrid-doorkey", "noisy", Episodes(40, 0), epsilon=0.5,
                                       preprocess={"kind": "minigrid_rgb", "frame_size": size})
    return load_transitions(dataset_id, heldout_fraction=0.1)


def time_training(run_dir: Path, data: Any, lam_cfg: LAMConfig, batch: int, settings: dict, steps: int, warmup: int) -> float:
    """Seconds per update of the real loop, after ``warmup`` updates (no checkpoint or eval inside the window)."""
    stamps: dict[int, float] = {}
    cfg = TrainConfig(steps=warmup + steps, batch_size=batch, progress=False, checkpoint_every=10**6, eval_every=10**6,
                      log_every=25, **settings)
    pretrain(run_dir, data, lam_cfg, cfg, on_step=lambda step, loss: stamps.__setitem__(step, time.perf_counter()))
    return (stamps[warmup + steps] - stamps[warmup]) / steps


def training_rows(root: Path, rounds: int, ceiling: float, models: list[str]) -> list[dict[str, Any]]:
    cases = []
    for model in models:
        size, channels = MODELS[model]
        data = training_data(root, size, model)
        base = dict(obs_shape=list(data.obs_shape), preprocess=data.preprocess, channels=channels)
        if model == "games":  # lam=games as shipped, on Breakout's 64x64 grayscale frames
            base = lam_config_for({**lam_preset("games"), **base}, data).to_dict()
        for variant, lam_cfg in (("flexlam", LAMConfig.from_dict(base)), ("fixed", LAMConfig.from_dict({**base, "nested_dropout": False}))):
            batches = {"benchmark": [64, 256], "games": [32, 64]}.get(model, [64])
            for batch in batches:
                flops = update_flops(lam_cfg, data, TrainConfig(batch_size=batch))
                steps = 30 if model == "benchmark" else 8
                for setting in SETTINGS:
                    cases.append({"model": f"{model}-{variant}", "batch": batch, "setting": setting, "flops": flops,
                                  "data": data, "lam_cfg": lam_cfg, "steps": steps, "times": []})
    for r in range(rounds):
        for i, case in enumerate(cases):
            run = root / "runs" / f"{r}_{i}"
            case["times"].append(time_training(run, case["data"], case["lam_cfg"], case["batch"], SETTINGS[case["setting"]],
                                               case["steps"], warmup=3))
            print(f"  train {case['model']} b={case['batch']} {case['setting']}: {case['times'][-1] * 1000:.1f} ms", flush=True)
    rows = []
    for case in cases:
        step_s = statistics.median(case["times"])
        gflops = case["flops"] / step_s / 1e9
        rows.append({"model": case["model"], "batch": case["batch"], "setting": case["setting"], "ms_per_step": step_s * 1000,
                     "samples_per_s": case["batch"] / step_s, "gflops": gflops, "fraction_of_matmul": gflops / ceiling,
                     "gflop_per_step": case["flops"] / 1e9})
    return rows


def conv_rows(lam_cfg: LAMConfig, batch: int, rounds: int, ceiling: float) -> list[dict[str, Any]]:
    """Every conv of one LAM timed alone (forward + both backward passes, channels-last as in training):
    what mkldnn gives for this layer shape, and so a floor under the step time."""
    lam = FlexLAM(lam_cfg)
    shapes: list[tuple[str, torch.nn.Conv2d, tuple[int, ...]]] = []
    hooks = [m.register_forward_hook(lambda m, inp, out, n=n: shapes.append((n, m, tuple(inp[0].shape))))
             for n, m in lam.named_modules() if isinstance(m, torch.nn.Conv2d)]
    frames = torch.zeros((batch, *lam_cfg.obs_shape), dtype=torch.uint8)
    lam(frames, frames)
    for hook in hooks:
        hook.remove()
    rows = []
    for name, conv, shape in shapes:
        x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
        out_hw = conv(x).shape[-2:]
        flops = 3 * 2 * shape[0] * out_hw[0] * out_hw[1] * conv.out_channels * conv.in_channels * conv.kernel_size[0] ** 2
        times = []
        for _ in range(rounds):
            for _ in range(3):
                conv(x).sum().backward()
            start = time.perf_counter()
            for _ in range(10):
                conv(x).sum().backward()
            times.append((time.perf_counter() - start) / 10)
        step_s = statistics.median(times)
        rows.append({"layer": name, "in_shape": list(shape), "out_channels": conv.out_channels, "kernel": conv.kernel_size[0],
                     "ms": step_s * 1000, "gflops": flops / step_s / 1e9, "fraction_of_matmul": flops / step_s / 1e9 / ceiling})
    return rows


def memory_format_rows(lam_cfg: LAMConfig, batch: int, rounds: int, ceiling: float) -> list[dict[str, Any]]:
    """One update (forward, backward, AdamW) of the LAM with its weights in each memory format, on fixed frames:
    whether channels-last (oneDNN's native layout) would speed up training. Outside the real loop, so only the
    two rows' ratio is read."""
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (batch, *lam_cfg.obs_shape), dtype=torch.uint8)
    nxt = frames.roll(1, dims=1)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        FlexLAM(lam_cfg)(frames, nxt).loss.backward()
    flops = float(counter.get_total_flops())
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    times: dict[str, list[float]] = {fmt: [] for fmt in formats}
    for _ in range(rounds):
        for fmt, memory_format in formats.items():
            lam = FlexLAM(lam_cfg).to(memory_format=memory_format)
            opt = torch.optim.AdamW(lam.parameters(), 1e-3)
            for i in range(13):
                if i == 3:
                    start = time.perf_counter()
                out = lam(frames, nxt)
                opt.zero_grad()
                out.loss.backward()
                opt.step()
            times[fmt].append((time.perf_counter() - start) / 10)
    return [{"memory_format": fmt, "ms_per_step": statistics.median(t) * 1000,
             "fraction_of_matmul": flops / statistics.median(t) / 1e9 / ceiling} for fmt, t in times.items()]


# --------------------------------------------------------------------------- wrappers
def latent_models(env: str) -> tuple[FlexLAM, Translator]:
    """Quickstart-size models (untrained: the cost is the same) for pixel MiniGrid or CartPole."""
    torch.manual_seed(0)
    if env == "minigrid":
        lam = FlexLAM(LAMConfig(obs_shape=[64, 64, 3], preprocess=PIXELS))
        spec = action_spec(gym.spaces.Discrete(7))
    else:
        lam = FlexLAM(LAMConfig(obs_shape=[4], obs_dtype="float32"))
        spec = action_spec(gym.spaces.Discrete(2))
    translator = Translator(TranslatorConfig(num_tokens=lam.num_tokens, latent_dim=lam.latent_dim, action=spec, use_obs=True,
                                             obs_shape=list(lam.config.obs_shape)))
    return lam, translator


def make_raw(env: str) -> gym.Env:
    return get_task(MINIGRID_ID, PIXELS).make() if env == "minigrid" else gym.make("CartPole-v1")


def build(env: str, form: str, n_envs: int, latent: str | None, models: tuple[FlexLAM, Translator]) -> Any:
    """A raw (``latent=None``) or latent (``"old"``/``"new"`` translation) env of the given form."""
    lam, translator = models
    memoize = latent == "new"
    if form == "single":
        raw = make_raw(env)
        return raw if latent is None else LatentActionWrapper(raw, lam, translator, 2, memoize=memoize)
    if form == "sb3":
        from stable_baselines3.common.vec_env import DummyVecEnv

        venv = DummyVecEnv([lambda: make_raw(env)] * n_envs)
        return venv if latent is None else LatentActionVecEnv(venv, lam, translator, 2, memoize=memoize)
    venv = gym.vector.SyncVectorEnv([lambda: make_raw(env)] * n_envs)
    return venv if latent is None else LatentActionVectorWrapper(venv, lam, translator, 2, memoize=memoize)


def time_env(env: Any, form: str, n_envs: int, latent: bool, steps: int, warm: bool = False) -> float:
    """Microseconds per env step (per sub-env step for vector forms), random actions, after a warm-up.

    A latent env starts with empty memos, as a freshly built wrapper would (what it reuses, it saw
    in this run: MiniGrid-Empty-8x8 shows about 150 distinct frames), unless ``warm``: then the same
    steps run once untimed first, as in the steady state of a long training run.
    """
    rng = np.random.default_rng(0)
    space = env.action_space
    translation = getattr(env, "translation", None)
    for memo in (translation.latents, translation.features) if translation is not None else ():
        if memo is not None:
            memo.clear()

    def action() -> Any:
        if latent:
            return rng.integers(0, 8, size=(2,) if form == "single" else (n_envs, 2))
        if form == "single":
            return space.sample()
        return np.array([space.sample() for _ in range(n_envs)]) if form == "sb3" else space.sample()

    if form == "sb3":
        env.seed(0)
        env.reset()
    else:
        env.reset(seed=0)
    actions = [action() for _ in range(steps + 20)]

    def run(batch: list) -> None:
        for a in batch:
            if form == "single":
                _, _, terminated, truncated, _ = env.step(a)
                if terminated or truncated:
                    env.reset()
            else:
                env.step(a)  # vector envs reset their finished sub-envs themselves

    run(actions[:20] if not warm else actions)
    start = time.perf_counter()
    run(actions[20:])
    return (time.perf_counter() - start) / steps / (1 if form == "single" else n_envs) * 1e6


def wrapper_rows(rounds: int) -> list[dict[str, Any]]:
    cases = []
    for env in ("minigrid", "cartpole"):
        models = latent_models(env)
        for form, n_envs in (("single", 1), ("sb3", 8), ("gym", 8)):
            steps = 300 if form == "single" else 60
            new = build(env, form, n_envs, "new", models)
            variants = {"raw": build(env, form, n_envs, None, models), "old": build(env, form, n_envs, "old", models),
                        "new": new, "new-warm": new}
            cases.append({"env": env, "form": form, "n_envs": n_envs, "steps": steps, "envs": variants,
                          "times": {name: [] for name in variants}})
    for _ in range(rounds):
        for case in cases:
            for name, built in case["envs"].items():
                case["times"][name].append(time_env(built, case["form"], case["n_envs"], name != "raw", case["steps"],
                                                    warm=name == "new-warm"))
            print(f"  wrapper {case['env']} {case['form']} x{case['n_envs']}: "
                  + ", ".join(f"{n} {t[-1]:.0f} us" for n, t in case["times"].items()), flush=True)
    rows = []
    for case in cases:
        med = {name: statistics.median(times) for name, times in case["times"].items()}
        for setting in ("old", "new", "new-warm"):
            rows.append({"env": case["env"], "form": case["form"], "n_envs": case["n_envs"], "setting": setting,
                         "raw_us": med["raw"], "latent_us": med[setting], "ratio": med[setting] / med["raw"]})
    return rows


# --------------------------------------------------------------------------- report
def report(result: dict[str, Any]) -> str:
    lines = [f"# Throughput ({result['threads']} torch threads, torch {result['versions']['torch']})", "",
             f"Command: `{result['command']}`", "",
             f"fp32 matmul ceiling (n = 1024): **{result['matmul_gflops']:.0f} GFLOP/s**", "",
             "## Training step (real loop, memory-mapped batches)", "",
             markdown_table(["model", "batch", "setting", "ms/step", "samples/s", "GFLOP/step", "GFLOP/s", "fraction of matmul"],
                            [[r["model"], r["batch"], r["setting"], f"{r['ms_per_step']:.1f}", f"{r['samples_per_s']:.0f}",
                              f"{r['gflop_per_step']:.2f}", f"{r['gflops']:.1f}", f"{r['fraction_of_matmul']:.2f}"]
                             for r in result["train"]]), "",
             *_optional(result)]
    return "\n".join(lines)


def _optional(result: dict[str, Any]) -> list[str]:
    """The conv and wrapper tables (absent in a --training-only run)."""
    if not result["conv_layers"]:
        return []
    model, batch = result["conv_model"], result["conv_batch"]
    convs = sum(r["ms"] for r in result["conv_layers"])
    train = [r for r in result["train"] if r["model"] == f"{model}-flexlam" and r["batch"] == batch and r["setting"] == "new"]
    share = f" of the {train[0]['ms_per_step']:.1f} ms training step above ({convs / train[0]['ms_per_step']:.0%})" if train else ""
    lines = [f"## Each conv of the {model}-size LAM alone (batch {batch}, forward + backward)", "",
             markdown_table(["layer", "input", "out channels", "kernel", "ms", "GFLOP/s", "fraction of matmul"],
                            [[r["layer"], "x".join(map(str, r["in_shape"])), r["out_channels"], r["kernel"], f"{r['ms']:.2f}",
                              f"{r['gflops']:.0f}", f"{r['fraction_of_matmul']:.2f}"] for r in result["conv_layers"]]), "",
             f"Sum over the convs: {convs:.1f} ms per step{share}.", ""]
    if result.get("memory_format"):
        lines += [f"## One update of the {model}-size LAM by weight memory format (batch {batch}, fixed frames, outside the loop)", "",
                  markdown_table(["memory format", "ms/step", "fraction of matmul"],
                                 [[r["memory_format"], f"{r['ms_per_step']:.1f}", f"{r['fraction_of_matmul']:.2f}"]
                                  for r in result["memory_format"]]), ""]
    if not result["wrapper"]:
        return lines
    return [*lines,
             "## Latent-action wrappers (k = 2), microseconds per env step", "",
             markdown_table(["env", "form", "n_envs", "setting", "raw us", "latent us", "ratio"],
                            [[r["env"], r["form"], r["n_envs"], r["setting"], f"{r['raw_us']:.0f}", f"{r['latent_us']:.0f}",
                              f"{r['ratio']:.2f}x"] for r in result["wrapper"]]), "",
             "`old`: translation recomputed every step (`memoize=False`, the previous code path); `new`: the default, "
             "from a freshly built wrapper (empty memos, 20 warm-up steps); `new-warm`: the same steps seen once before, "
             "as in the steady state of a long run.", ""]
