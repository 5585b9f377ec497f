"""Games: the controllability diagnostic, the games recipe's loss and frame stacks, Atari experts, sticky data.

Procgen itself (its Gymnasium env, collection, frames kept exact) is in test_procgen.py, which runs after
``pip install ".[procgen]"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from conftest import FAST_TRAIN, tiny_lam_config

from flexlam_rl import FlexLAM, LAMConfig, diagnose
from flexlam_rl.data.transitions import load_transitions
from flexlam_rl.errors import ConfigError, DataError, FlexLAMError
from flexlam_rl.evaluate.diagnosis import budget_errors, collapse_warning, controllability
from flexlam_rl.evaluate.reconstruction import reconstruction_by_budget
from flexlam_rl.model.lam import changed_pixels, frame_loss
from flexlam_rl.pretrain.train import TrainConfig, pretrain


@pytest.fixture(scope="module")
def trained(pixel_dataset: str, tmp_path_factory: pytest.TempPathFactory) -> FlexLAM:
    data = load_transitions(pixel_dataset, heldout_fraction=0.25)
    run = pretrain(tmp_path_factory.mktemp("diag"), data, tiny_lam_config(data), TrainConfig(steps=200, **FAST_TRAIN))
    return FlexLAM.load(run.lam_dir)


def test_tokens_that_carry_the_action_are_controllable_and_a_blind_decoder_is_not(pixel_dataset: str, trained: FlexLAM) -> None:
    data = load_transitions(pixel_dataset, heldout_fraction=0.25)
    report = controllability(trained, data.heldout)
    assert set(report["controllability"]) == {1, 2, 3, 4} and report["transitions"] == len(data.heldout)
    assert report["controllability"][4] > 0.2  # right tokens remove a fair share of the wrong tokens' error
    for k in (1, 4):  # own tokens beat another transition's, on the pixels that change
        assert report["mse_changed"][k]["own"] < report["mse_changed"][k]["shuffled"]
    assert 0 < report["changed_fraction"] < 0.5 and report["mse_changed"][4]["own"] > report["mse"][4]["own"]
    blind = FlexLAM(trained.config)  # untrained: the decoder's last layer starts at zero, so it predicts o_t for any code
    untouched = controllability(blind, data.heldout)
    assert all(abs(v) < 1e-6 for v in untouched["controllability"].values())
    assert untouched["mse_changed"][4]["own"] == pytest.approx(untouched["copy_changed"])
    warning = collapse_warning(untouched, blind.config.obs_shape)
    assert warning and "lam=games" in warning and "32x32" not in warning  # small frames are not named as a cause
    assert collapse_warning(report) is None or "Slots" in collapse_warning(report)


def test_the_diagnostic_over_every_transition_gives_the_held_out_errors_too(pixel_dataset: str, trained: FlexLAM) -> None:
    """pretraining's final report reads its per-budget errors off the diagnostic when that decoded every held-out
    transition (one pass instead of two): they must be reconstruction_by_budget's numbers."""
    data = load_transitions(pixel_dataset, heldout_fraction=0.25)
    direct = reconstruction_by_budget(trained, data.heldout, [1, 2, 4])
    derived = budget_errors(controllability(trained, data.heldout, [1, 2, 4]))
    assert derived["mse"].keys() == direct["mse"].keys() and derived["transitions"] == direct["transitions"]
    for k in direct["mse"]:
        assert derived["mse"][k] == pytest.approx(direct["mse"][k], rel=1e-5)
    assert derived["null"] == pytest.approx(direct["null"], rel=1e-5) and derived["copy"] == pytest.approx(direct["copy"], rel=1e-5)
    assert derived["code_usage"] == pytest.approx(direct["code_usage"], rel=1e-6)


def test_held_out_scoring_in_small_calls_gives_the_numbers_of_one_call_per_batch(pixel_dataset: str, trained: FlexLAM,
                                                                                    monkeypatch) -> None:
    """Scoring caps each call's activations (FlexLAM.eval_rows: large blocks cost page faults, not arithmetic);
    the chunks must not change a number, nor which transition is another's shuffled partner."""
    import flexlam_rl.model.lam as model

    data = load_transitions(pixel_dataset, heldout_fraction=0.25)
    whole = (controllability(trained, data.heldout), reconstruction_by_budget(trained, data.heldout), trained.encode_set(data.heldout))
    monkeypatch.setattr(model, "EVAL_ACTIVATION_BYTES", 3 * trained._eval_frame_bytes())  # 3 frames a call: chunks of 1 transition
    assert trained.eval_rows() == 3 and trained.eval_rows(9) == 1 and len(data.heldout) > 3
    chunked = (controllability(trained, data.heldout), reconstruction_by_budget(trained, data.heldout), trained.encode_set(data.heldout))
    assert torch.equal(chunked[2], whole[2])
    for k in whole[0]["controllability"]:
        assert chunked[0]["controllability"][k] == pytest.approx(whole[0]["controllability"][k], rel=1e-4, abs=1e-6)
        for kind in ("own", "shuffled"):
            assert chunked[0]["mse_changed"][k][kind] == pytest.approx(whole[0]["mse_changed"][k][kind], rel=1e-5)
        assert chunked[1]["mse"][k] == pytest.approx(whole[1]["mse"][k], rel=1e-5)
    assert chunked[0]["copy_changed"] == pytest.approx(whole[0]["copy_changed"], rel=1e-6)


def test_diagnose_contract_and_bad_input(pixel_dataset: str, trained: FlexLAM, vector_dataset: str, tmp_path) -> None:
    trained.save(tmp_path / "lam")
    result = diagnose(str(tmp_path / "lam"), [pixel_dataset], limit=32, heldout_fraction=0.25)
    assert set(result) >= {"controllability", "perplexity", "collapsed", "probe_accuracy"}
    assert result["collapsed"] is False and len(result["perplexity"]) == 4 and set(result["probe_accuracy"]) == {1, 2, 3, 4}
    assert result["transitions"] == 32 and result["controllability"][4] > 0.2
    assert max(result["probe_accuracy"].values()) > 0.3  # 7 MiniGrid actions: the tokens say more than chance
    assert 1 / 7 <= result["probe_majority_rate"] < 1  # what an accuracy is read against: always the commonest action
    with pytest.raises(DataError, match=r"have observations \[4\].*expects \[32, 32, 3\].*same preprocessing"):
        diagnose(trained, vector_dataset)


def test_change_weight_adds_the_error_on_changed_pixels_however_few() -> None:
    x = torch.zeros(2, 1, 16, 16)
    x_next = x.clone()
    x_next[0, 0, 3, 3] = 1.0  # one pixel moves in the first frame, nothing in the second
    mask = changed_pixels(x, x_next)
    assert mask.sum() == 1 and changed_pixels(x, x_next, dilate=3).sum() == 9
    pred = x.clone()  # predicts "nothing changes": wrong on exactly that pixel
    plain = frame_loss(pred, x_next, mask, 0.0)
    assert plain == pytest.approx(1 / 512)  # the whole-frame mean hides it
    assert frame_loss(pred, x_next, mask, 1.0) == pytest.approx(1 / 512 + 1.0)  # the changed-pixel MSE is 1
    assert frame_loss(pred, x_next, torch.zeros_like(mask), 1.0) == pytest.approx(plain)  # nothing changed: no extra term


def test_predict_newest_copies_the_known_frames_and_needs_a_stack() -> None:
    stack = {"kind": "atari", "frame_size": 16, "frame_stack": 2}
    lam = FlexLAM(LAMConfig(obs_shape=[16, 16, 2], preprocess=stack, predict_newest=True, channels=[8], hidden_dim=16))
    obs = torch.randint(0, 255, (3, 16, 16, 2), dtype=torch.uint8)
    nxt = torch.cat([obs[..., 1:], torch.randint(0, 255, (3, 16, 16, 1), dtype=torch.uint8)], dim=-1)
    out = lam(obs, nxt)
    assert torch.equal(out.pred[:, 0], lam.normalize(obs)[:, 1])  # the older frame of o_t+1 is o_t's newest, exactly
    decoded = lam.decode(obs, lam.embed(lam.encode(obs, nxt), 1))
    assert decoded.shape == obs.shape and torch.equal(decoded[..., 0], obs[..., 1])
    with pytest.raises(ConfigError, match="predict_newest needs frames stacked"):
        LAMConfig(obs_shape=[16, 16, 1], preprocess={"kind": "atari", "frame_size": 16}, predict_newest=True)
    with pytest.raises(ConfigError, match="change_weight must be a number"):
        LAMConfig(obs_shape=[16, 16, 1], change_weight=-1.0)
    assert LAMConfig.from_dict({"obs_shape": [4], "obs_dtype": "float32"}).change_weight == 0.0  # old checkpoints load


def test_games_recipe_trains_and_is_a_lam_config(tmp_path, pixel_dataset: str) -> None:
    from flexlam_rl.errors import ConfigError
    from flexlam_rl.pretrain.train import lam_config_for, lam_preset

    data = load_transitions(pixel_dataset, heldout_fraction=0.25)
    lam_cfg = lam_config_for({**lam_preset("games"), "channels": [8, 16], "hidden_dim": 32}, data)
    assert lam_cfg.code_norm and lam_cfg.nested_dropout and lam_cfg.idm_downsample == "maxpool"  # the rule's pick
    choice = json.loads((Path(__file__).parents[1] / "benchmarks/results/games_recipe/results.json").read_text())["choice"]
    assert choice["chosen"] == "norm_pool"  # lam=games is that variant: code_norm + idm_downsample=maxpool
    from flexlam_rl.bench.games import SHIPPED, VARIANTS, choose_recipe

    shipped = VARIANTS[SHIPPED]  # the suite the README reports is lam=games
    assert SHIPPED == choice["chosen"] and shipped.frame_stack == 1 and not shipped.train and shipped.frame_skip is None
    assert all(lam_preset("games")[key] == value for key, value in shipped.lam.items())
    runs = json.loads((Path(__file__).parents[1] / "benchmarks/results/games_recipe/results.json").read_text())["runs"]
    assert choose_recipe(runs) == choice  # the variants config and the rule still choose what was committed
    assert not lam_preset("flexlam")["code_norm"] and lam_preset("fixed")["nested_dropout"] is False
    with pytest.raises(ConfigError, match="expected one of fixed, flexlam, games"):
        lam_preset("game")
    run = pretrain(tmp_path / "run", data, lam_cfg, TrainConfig(steps=30, **FAST_TRAIN))
    assert np.isfinite(run.final_loss)


def test_sticky_random_actions_are_held_for_several_steps() -> None:
    from flexlam_rl.envs import make_behaviour
    from flexlam_rl.envs.experts import STICKY_MEAN_HOLD

    env = gym.make("CartPole-v1")
    policy = make_behaviour("sticky", env.action_space, None, seed=0)
    actions = np.array([policy(env) for _ in range(4000)])
    repeats = np.mean(actions[1:] == actions[:-1])
    expected = 1 - 1 / STICKY_MEAN_HOLD + (1 / STICKY_MEAN_HOLD) / 2  # kept, or redrawn as the same of 2 actions
    assert repeats == pytest.approx(expected, abs=0.03)
    again = make_behaviour("sticky", env.action_space, None, seed=0)
    assert np.array_equal([again(env) for _ in range(4000)], actions)  # a function of the seed


@pytest.mark.slow
@pytest.mark.parametrize(("task", "margin"), [("pong", 10.0), ("freeway", 3.0)])
def test_atari_experts_beat_random_actions(task: str, margin: float) -> None:
    """Over 1200 steps: the Pong tracker loses far fewer points than random actions (about 5 vs 21), the Freeway
    chicken that always walks up crosses several times (random actions: none)."""
    from flexlam_rl.envs import get_task, make_behaviour

    def game_return(behaviour: str) -> float:
        env = get_task(task).make(max_episode_steps=1200)
        policy = make_behaviour(behaviour, env.action_space, get_task(task).expert, seed=0)
        env.reset(seed=1)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(policy(env))
            total += reward
            done = terminated or truncated
        env.close()
        return total

    assert game_return("expert") > game_return("random") + margin


def test_raw_minigrid_ids_get_frames_and_kinds_that_do_not_fit_are_clear_errors(isolated_roots) -> None:
    from flexlam_rl.config import Episodes
    from flexlam_rl.data.collect import collect_dataset
    from flexlam_rl.envs import get_task

    stats = collect_dataset("games/keycorridor/random-v0", "MiniGrid-KeyCorridorS3R1-v0", "random", Episodes(1, 0, 5),
                            preprocess={"kind": "minigrid_rgb", "frame_size": 16})
    assert stats.steps == 5
    assert get_task("MiniGrid-KeyCorridorS3R1-v0").preprocess["kind"] == "minigrid_rgb"
    with pytest.raises(FlexLAMError, match=r"'atari' is for ALE games.*preprocess=\{kind: minigrid_rgb\}"):
        get_task("minigrid-empty", {"kind": "atari"}).make()
    with pytest.raises(FlexLAMError, match=r"'atari' is for ALE games.*render_rgb"):
        get_task("CartPole-v1", {"kind": "atari"}).make()


def test_a_procgen_task_without_the_extra_names_the_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "procgen", None)  # as if procgen-mirror were not installed
    with pytest.raises(FlexLAMError, match=r'pip install "flexlam-rl\[procgen\]"'):
        gym.make("flexlam/procgen-coinrun-v0")


def test_a_lam_saved_before_the_penalties_were_removed_loads_with_its_fingerprint_and_one_that_used_them_is_refused(tmp_path) -> None:
    """The games ablation's saturation and spread penalties left the model; a LAM config saved with them (off) still
    loads, and its fingerprint is what the code that saved it computed, so its translators and policies still match."""
    from flexlam_rl.checkpoint import weights_digest
    from flexlam_rl.config import REMOVED_AT, REMOVED_OPTIONS
    from flexlam_rl.errors import ConfigError

    lam = FlexLAM(LAMConfig(obs_shape=[16, 16, 1], channels=[8], hidden_dim=16))
    saved_before = {**lam.config.to_dict(), **REMOVED_OPTIONS}  # what config.json held then
    assert set(REMOVED_OPTIONS).isdisjoint(lam.config.to_dict())
    again = FlexLAM(LAMConfig.from_dict(saved_before))
    again.load_state_dict(lam.state_dict())
    assert again.fingerprint() == lam.fingerprint() == weights_digest(lam, saved_before)
    with pytest.raises(ConfigError, match=f"removed .* commit {REMOVED_AT} or earlier"):
        LAMConfig.from_dict({**saved_before, "spread_weight": 1.0})
    with pytest.raises(ConfigError, match="Unknown LAM config keys"):
        LAMConfig.from_dict({**saved_before, "spread_weights": 0.0})


def test_code_norm_spreads_nearly_constant_encoder_values_and_encodes_without_the_batch(tmp_path) -> None:
    from flexlam_rl.model.quantize import CodeNorm

    norm = CodeNorm((8, 1))
    z = 0.07 + 0.003 * torch.randn(64, 8, 1, generator=torch.Generator().manual_seed(0))  # a fresh encoder on a static screen
    z.requires_grad_(True)
    out = norm(z)  # a training pass: the batch's own statistics, gradient through them
    assert torch.allclose(out.mean(0), torch.zeros(8, 1), atol=1e-4)
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(8, 1), atol=1e-3)
    out.sum().backward()
    assert z.grad.abs().max() < 1e-2  # a push shared by every transition is removed (1 per value without the norm)
    assert torch.allclose(norm.running_mean, z.detach().mean(0)) and int(norm.batches_seen) == 1
    with torch.no_grad():  # any other pass: the running statistics, so one transition encodes as it does in a batch
        assert torch.allclose(norm(z[:1]), norm(z)[:1])

    lam = FlexLAM(LAMConfig(obs_shape=[16, 16, 1], channels=[8], hidden_dim=16, code_norm=True))
    frames = torch.randint(0, 255, (8, 16, 16, 1), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    lam(frames, frames.flip(0)).loss.backward()  # one training pass sets the statistics
    assert int(lam.code_norm.batches_seen) == 1
    tokens = lam.encode(frames, frames.flip(0))
    assert torch.equal(lam.encode(frames[:1], frames.flip(0)[:1]), tokens[:1])
    lam.save(tmp_path / "lam")
    loaded = FlexLAM.load(tmp_path / "lam")
    assert torch.equal(loaded.code_norm.running_var, lam.code_norm.running_var)
    assert torch.equal(loaded.encode(frames, frames.flip(0)), tokens)
    with pytest.raises(ConfigError, match="code_norm must be true or false"):
        LAMConfig(obs_shape=[16, 16, 1], code_norm=1)


def test_maxpool_idm_stages_halve_the_frame_reach_the_supervised_idm_and_survive_save_and_load(tmp_path) -> None:
    from flexlam_rl.align.idm import SupervisedIDM
    from flexlam_rl.model.nets import down_block

    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 5, 9] = 1.0  # one lit pixel: a stride-2 4x4 conv and a conv + max-pool both halve the frame
    assert down_block(1, 4, "stride")(x).shape == down_block(1, 4, "maxpool")(x).shape == (1, 4, 8, 8)
    cfg = LAMConfig(obs_shape=[16, 16, 3], channels=[8, 8], hidden_dim=16, idm_downsample="maxpool")
    lam = FlexLAM(cfg)
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in lam.idm.modules())
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in lam.fdm.modules())  # only the encoder changes
    frames = torch.randint(0, 255, (4, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    lam(frames, frames.flip(0)).loss.backward()
    assert all(p.grad is not None for p in lam.idm.parameters())
    lam.save(tmp_path / "lam")
    loaded = FlexLAM.load(tmp_path / "lam")
    assert loaded.config.idm_downsample == "maxpool"
    assert torch.equal(loaded.encode(frames, frames.flip(0)), lam.encode(frames, frames.flip(0)))
    idm = SupervisedIDM(cfg.obs_shape, {"type": "discrete", "n": 3}, cfg.channels, cfg.hidden_dim, cfg.idm_downsample)
    assert idm(frames.numpy(), frames.flip(0).numpy()).shape == (4, 3)
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in idm.modules())
    with pytest.raises(ConfigError, match="idm_downsample must be one of"):
        LAMConfig(obs_shape=[16, 16, 1], idm_downsample="avgpool")
    with pytest.raises(ValueError, match="downsample must be one of"):  # callers that bypass LAMConfig too
        down_block(1, 4, "avgpool")


def test_a_latent_fed_to_the_decoders_first_layer_reaches_every_scale_and_keeps_multi_prefix_updates_exact(tmp_path) -> None:
    """fdm_latent_input: the latent, tiled over the frame, enters the FDM's first conv beside o_t; a frame decoded
    with m latents in one call (multi-prefix updates) gives what m separate calls give."""
    from flexlam_rl.bench.cache import lam_key_record

    cfg = LAMConfig(obs_shape=[16, 16, 1], channels=[8, 8], hidden_dim=16, fdm_latent_input=True)
    lam = FlexLAM(cfg)
    assert lam.fdm.down[0][0].in_channels == 1 + 8  # the frame and the tiled latent
    torch.nn.init.normal_(lam.fdm.out.weight, std=0.1)  # zero at init: make the output read the features
    gen = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 255, (3, 16, 16, 1), dtype=torch.uint8, generator=gen)
    x = lam.obs_input(frames)
    latents = torch.randn(3 * 2, cfg.num_tokens, cfg.latent_dim, generator=gen)
    together = lam.fdm(x, latents)
    apart = torch.stack([lam.fdm(x, latents[j::2]) for j in range(2)], dim=1).flatten(0, 1)
    torch.testing.assert_close(together, apart)
    assert not torch.allclose(lam.fdm(x, latents[::2]), lam.fdm(x, latents[1::2]))  # the latent changes the frame
    lam(frames, frames.flip(0)).loss.backward()
    assert lam.fdm.inject.weight.grad is not None and lam.fdm.inject.weight.grad.abs().sum() > 0
    lam.save(tmp_path / "lam")
    loaded = FlexLAM.load(tmp_path / "lam")
    assert loaded.config.fdm_latent_input and torch.equal(loaded.fdm(x, latents), lam.fdm(x, latents))
    assert "fdm_latent_input" not in lam_key_record(LAMConfig(obs_shape=[16, 16, 1]))  # earlier cached runs keep their keys
    assert lam_key_record(cfg)["fdm_latent_input"] is True
    with pytest.raises(ConfigError, match="fdm_latent_input is for image LAMs"):
        LAMConfig(obs_shape=[4], fdm_latent_input=True)
    with pytest.raises(ConfigError, match="fdm_latent_input must be true or false"):
        LAMConfig(obs_shape=[16, 16, 1], fdm_latent_input="yes")
