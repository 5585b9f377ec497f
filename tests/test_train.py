"""Pretraining: the loss really moves, checkpoints resume exactly, budgets are evaluated."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_lam_config

from flexlam_rl import FlexLAM
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.evaluate.reconstruction import reconstruction_by_budget
from flexlam_rl.pretrain.runs import latest_checkpoint
from flexlam_rl.pretrain.train import TrainConfig, pretrain

FAST = dict(batch_size=16, lr=3e-3, warmup_steps=5, progress=False, eval_every=10_000, log_every=5)


@pytest.fixture(scope="module")
def pixels(pixel_dataset: str):
    return load_transitions(pixel_dataset, heldout_fraction=0.25, seed=0)


def test_training_beats_the_copy_baseline(pixels, tmp_path) -> None:
    result = pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(steps=150, **FAST))
    lam = FlexLAM.load(result.lam_dir)
    report = reconstruction_by_budget(lam, pixels.train)
    assert report["mse"][4] < 0.75 * report["copy"]  # tokens explain what changed (about 0.53 measured)
    assert report["mse"][1] < report["copy"]
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert len(result.code_usage) == 4 and max(result.code_usage) > 1.0


class Killed(Exception):
    """Raised from ``on_step``: the run stops mid-way, as a crash or a kill would stop it."""


def killed_at_step_9(run_dir, data, cfg) -> None:
    """A 12-step run (checkpoints every 4) that dies during step 9, after its step-8 checkpoint."""
    def kill(step: int, loss: float) -> None:
        if step == 9:
            raise Killed

    with pytest.raises(Killed):
        pretrain(run_dir, data, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST), on_step=kill)


def test_checkpoints_and_exact_resume(pixels, tmp_path) -> None:
    cfg = tiny_lam_config(pixels)
    straight = pretrain(tmp_path / "straight", pixels, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST))

    killed_at_step_9(tmp_path / "resumed", pixels, cfg)
    assert latest_checkpoint(tmp_path / "resumed").name == "step_00000008"
    FlexLAM.load(tmp_path / "resumed" / "lam")  # the run dir still loads after the crash
    resumed = pretrain(tmp_path / "resumed", pixels, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST))
    assert resumed.resumed_from == 8 and resumed.step == straight.step == 12
    a, b = FlexLAM.load(straight.lam_dir).state_dict(), FlexLAM.load(resumed.lam_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(list((tmp_path / "straight" / "checkpoints").glob("step_*"))) == 2  # keep_checkpoints


def test_restart_with_a_different_config_is_refused(pixels, tmp_path) -> None:
    pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(steps=4, checkpoint_every=2, **FAST))
    with pytest.raises(ValueError, match="different 'lam' config"):
        pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels, num_tokens=2), TrainConfig(steps=4, **FAST))


def test_a_run_saved_before_an_option_existed_resumes_at_its_default(pixels, tmp_path) -> None:
    """Upgrading must not strand runs: a run.json without a LAM option added since reads as that option's default."""
    import json

    cfg = tiny_lam_config(pixels)
    pretrain(tmp_path / "run", pixels, cfg, TrainConfig(steps=4, checkpoint_every=2, **FAST))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    del record["lam"]["fdm_latent_input"]  # as written by a version without the option
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    assert pretrain(tmp_path / "run", pixels, cfg, TrainConfig(steps=6, checkpoint_every=2, **FAST)).resumed_from == 4
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"fdm_latent_input: False -> True"):  # set otherwise, it is another model
        pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels, fdm_latent_input=True), TrainConfig(steps=8, **FAST))


def test_vector_lam_trains_on_cartpole(vector_dataset: str, tmp_path) -> None:
    data = load_transitions(vector_dataset, heldout_fraction=0.2)
    cfg = tiny_lam_config(data, num_tokens=4, fsq_levels=[8])
    result = pretrain(tmp_path / "vec", data, cfg, TrainConfig(steps=150, **FAST))
    report = reconstruction_by_budget(FlexLAM.load(result.lam_dir), data.heldout)
    assert report["mse"][4] < 0.5 * report["copy"]
    assert torch.allclose(FlexLAM.load(result.lam_dir).obs_std, torch.as_tensor(data.obs_stats()[1], dtype=torch.float32))


@pytest.mark.slow
def test_fixed_lam_is_worse_than_flexlam_on_an_untrained_prefix(pixels, tmp_path) -> None:
    """The point of the method, in miniature: a fixed K-token LAM never learned short prefixes."""
    steps = TrainConfig(steps=150, **FAST)
    flex = pretrain(tmp_path / "flex", pixels, tiny_lam_config(pixels), steps)
    fixed = pretrain(tmp_path / "fixed", pixels, tiny_lam_config(pixels, nested_dropout=False), steps)
    flex_k1 = reconstruction_by_budget(FlexLAM.load(flex.lam_dir), pixels.heldout, [1])["mse"][1]
    fixed_k1 = reconstruction_by_budget(FlexLAM.load(fixed.lam_dir), pixels.heldout, [1])["mse"][1]
    assert flex_k1 < fixed_k1


def test_a_loss_at_exactly_zero_has_plateaued_instead_of_dividing_by_zero() -> None:
    """Behaviour cloning on a task whose expert always takes one action drives its validation loss to 0.0 in float32
    (Freeway: always UP); the plateau statistic must read that as no change, not raise ZeroDivisionError."""
    from flexlam_rl.pretrain.plateau import window_change

    assert window_change([0.5, 0.0, 0.0, 0.0, 0.0], 2) == 0.0
    assert window_change([0.0, 0.0, 0.1, 0.1], 2) == float("inf")
    assert window_change([1.0, 1.0, 0.5, 0.5], 2) == -0.5 and window_change([1.0], 2) is None


def test_plateau_rule_decays_the_lr_then_stops() -> None:
    from flexlam_rl.pretrain.plateau import Plateau

    rule = Plateau(TrainConfig(until_plateau=True, plateau_window=2, plateau_tol=0.1, plateau_decays=1))
    for loss in (1.0, 0.8, 0.5, 0.4, 0.42):  # window means 0.9 -> 0.45 -> 0.41 (vs 0.65): still learning
        rule.update({4: loss})
    assert rule.lr_scale == 1.0 and not rule.stopped
    rule.update({4: 0.41})  # mean of the last two, 0.415, is not 10% below the two before (0.45): first plateau
    assert rule.lr_scale == pytest.approx(0.1) and not rule.stopped
    for loss in (0.3, 0.2, 0.1, 0.05, 0.05, 0.049):  # a new phase at the lower LR keeps improving
        rule.update({4: loss})
    assert not rule.stopped
    for loss in (0.048, 0.049):
        rule.update({4: loss})
    assert rule.stopped
    replayed = Plateau(TrainConfig(until_plateau=True, plateau_window=2, plateau_tol=0.1), rule.state())
    assert replayed.stopped and replayed.lr_scale == rule.lr_scale


def test_a_flexlam_plateaus_only_when_every_budget_has() -> None:
    """k = 1 dominates the mean error and is flat; k = 8 still improves 5% a window: no plateau until it stops too."""
    from flexlam_rl.pretrain.plateau import Plateau

    rule = Plateau(TrainConfig(until_plateau=True, plateau_window=2, plateau_tol=0.02, plateau_decays=0))
    k8 = 1.0
    for _ in range(8):
        k8 *= 0.95
        rule.update({1: 10.0, 8: k8})
        assert not rule.stopped  # the plain mean (10 + k8) / 2 changes < 1% a window: the old objective would stop
    assert rule.changes()["1"] == pytest.approx(0.0) and rule.changes()["8"] < -0.02
    for _ in range(4):
        rule.update({1: 10.0, 8: k8})
    assert rule.stopped


def test_plateau_checks_read_the_validation_split_and_warn_without_one(pixel_dataset, pixels, tmp_path) -> None:
    cfg = TrainConfig(**{**FAST, "eval_every": 5}, until_plateau=True, max_steps=10, eval_transitions=16)
    with pytest.warns(UserWarning, match="set data.validation_fraction=0.1"):
        pretrain(tmp_path / "a", pixels, tiny_lam_config(pixels), cfg)
    split = load_transitions(pixel_dataset, heldout_fraction=0.25, seed=0, validation_fraction=0.2)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a validation split of its own: nothing to warn about
        run = pretrain(tmp_path / "b", split, tiny_lam_config(split), cfg)
    lam = FlexLAM.load(run.lam_dir)
    from flexlam_rl.pretrain.plateau import heldout_subset

    expected = reconstruction_by_budget(lam, split.validation, [1, 2, 3, 4], indices=heldout_subset(split, 16))
    assert run.curve[-1]["mse"] == pytest.approx(expected["mse"])  # the last check scored the validation transitions


def test_training_to_a_plateau_stops_records_its_curve_and_resumes_exactly(pixels, tmp_path) -> None:
    cfg = TrainConfig(**{**FAST, "eval_every": 10}, until_plateau=True, max_steps=400, eval_transitions=64, plateau_window=2,
                      plateau_tol=0.05, checkpoint_every=20)
    straight = pretrain(tmp_path / "straight", pixels, tiny_lam_config(pixels), cfg)
    assert straight.plateaued is True and straight.step < 400
    assert [c["updates"] for c in straight.curve] == list(range(10, straight.step + 1, 10))
    assert set(straight.curve[0]["mse"]) == {1, 2, 3, 4} and straight.curve[-1]["wall_s"] > straight.curve[0]["wall_s"]

    class Crash(Exception):
        pass

    def crash(step: int, loss: float) -> None:
        if step == straight.step - 15:
            raise Crash

    with pytest.raises(Crash):
        pretrain(tmp_path / "resumed", pixels, tiny_lam_config(pixels), cfg, on_step=crash)
    resumed = pretrain(tmp_path / "resumed", pixels, tiny_lam_config(pixels), cfg)
    assert resumed.resumed_from > 0 and resumed.step == straight.step and resumed.plateaued
    assert [c["loss"] for c in resumed.curve] == [c["loss"] for c in straight.curve]
    a, b = FlexLAM.load(straight.lam_dir).state_dict(), FlexLAM.load(resumed.lam_dir).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_capped_plateau_run_can_be_extended(pixels, tmp_path) -> None:
    cfg = dict(FAST, until_plateau=True, eval_every=10, eval_transitions=64, plateau_window=50, checkpoint_every=10)
    capped = pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(max_steps=20, **cfg))
    assert capped.plateaued is False and capped.step == 20
    longer = pretrain(tmp_path / "run", pixels, tiny_lam_config(pixels), TrainConfig(max_steps=30, **cfg))
    assert longer.resumed_from == 20 and longer.step == 30 and len(longer.curve) == 3


def test_multi_prefix_updates_average_the_loss_over_stratified_prefixes(pixels) -> None:
    lam = FlexLAM(tiny_lam_config(pixels))
    batch = pixels.train.__getitems__(np.arange(8))
    obs, nxt = torch.from_numpy(batch["obs"]), torch.from_numpy(batch["next_obs"])
    out = lam(obs, nxt, prefix_samples=4, generator=torch.Generator().manual_seed(0))
    assert out.prefix_len.tolist() == [1, 2, 3, 4] * 8  # K = 4 strata of the uniform distribution: every k once
    per_k = [lam(obs, nxt, prefix_len=k).loss for k in (1, 2, 3, 4)]
    assert out.loss.item() == pytest.approx(torch.stack(per_k).mean().item(), rel=1e-5)
    fixed = FlexLAM(tiny_lam_config(pixels, nested_dropout=False))
    assert fixed(obs, nxt, prefix_samples=4).prefix_len.tolist() == [4] * 8  # nothing to sample without nested dropout


def test_a_damaged_latest_checkpoint_is_set_aside_and_the_run_resumes_from_the_one_before(pixels, tmp_path) -> None:
    import json
    import warnings

    from flexlam_rl.errors import CheckpointError, FlexLAMWarning
    from flexlam_rl.evaluate.inspect import run_summary

    cfg, run = tiny_lam_config(pixels), tmp_path / "run"

    killed_at_step_9(run, pixels, cfg)
    latest = latest_checkpoint(run)
    assert latest.name == "step_00000008"
    weights = latest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated, as a full disk or a kill mid-copy leaves it
    with pytest.raises(CheckpointError, match="step_00000008/model.safetensors"):
        run_summary(run)  # flexlam-inspect refuses before it reports anything
    record = (run / "run.json").read_text()
    with pytest.raises(CheckpointError, match=r"No checkpoint of .* can be read .*Delete .*checkpoints"):
        (run / "checkpoints" / "step_00000004" / "optimizer.safetensors").write_bytes(b"junk")  # both damaged: refused
        pretrain(run, pixels, cfg, TrainConfig(steps=16, checkpoint_every=4, **FAST))
    assert (run / "run.json").read_text() == record and latest_checkpoint(run).name == "step_00000008"  # nothing touched
    assert json.loads(record)["steps"] == 12
    pretrain(tmp_path / "fresh", pixels, cfg, TrainConfig(steps=4, checkpoint_every=4, **FAST))  # a good step_4 to put back
    (run / "checkpoints" / "step_00000004" / "optimizer.safetensors").write_bytes(
        (tmp_path / "fresh" / "checkpoints" / "step_00000004" / "optimizer.safetensors").read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed = pretrain(run, pixels, cfg, TrainConfig(steps=12, checkpoint_every=4, **FAST))
    said = [str(w.message) for w in caught if issubclass(w.category, FlexLAMWarning)]
    assert any("checkpoint step_00000008 cannot be read" in m and "damaged-step_00000008" in m for m in said), said
    assert resumed.resumed_from == 4 and resumed.step == 12 and (run / "checkpoints" / "damaged-step_00000008").is_dir()
