"""FlexLAM model: null-fill, nested dropout, public encode/embed/decode, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from flexlam_rl import FlexLAM, LAMConfig, null_fill
from flexlam_rl.checkpoint import FORMAT_VERSION, CheckpointError
from flexlam_rl.errors import FlexLAMError
from flexlam_rl.model.budgets import prefix_weights

IMG = dict(obs_shape=[32, 32, 3], channels=[8, 16], hidden_dim=64, latent_dim=8, num_tokens=4, fsq_levels=[4])


def _frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def test_null_fill_keeps_prefix_and_nulls_the_rest_exactly() -> None:
    latent = torch.randn(5, 6, 3)
    null = torch.randn(3)
    prefix = torch.tensor([0, 1, 3, 6, 2])
    out = null_fill(latent, prefix, null)
    for b, k in enumerate(prefix.tolist()):
        assert torch.equal(out[b, :k], latent[b, :k])
        assert torch.equal(out[b, k:], null.expand(6 - k, 3))


def test_embed_puts_the_null_latent_in_slots_from_k() -> None:
    lam = FlexLAM(LAMConfig(**IMG))
    tokens = lam.encode(_frames(3), _frames(3, 1))
    assert tokens.shape == (3, 4) and tokens.dtype == torch.int64
    for k in range(1, 5):
        latent = lam.embed(tokens, prefix_len=k)
        assert latent.shape == (3, 4, 8)
        assert torch.equal(latent[:, k:], lam.null_latent.detach().expand(3, 4 - k, 8))
        assert not torch.equal(latent[:, :k], lam.null_latent.detach().expand(3, k, 8))
    assert torch.equal(lam.embed(tokens[:, :2], prefix_len=2), lam.embed(tokens, prefix_len=2))


@pytest.mark.parametrize("bad", [0, 5, -1, 1.5, "2", None, True])
def test_prefix_len_outside_range_names_the_range(bad) -> None:
    lam = FlexLAM(LAMConfig(**IMG))
    tokens = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="1..4"):
        lam.embed(tokens, prefix_len=bad)


def test_out_of_range_tokens_and_bad_observations_are_clear_errors() -> None:
    lam = FlexLAM(LAMConfig(**IMG))
    with pytest.raises(ValueError, match="0..3"):
        lam.embed(torch.full((1, 4), 4), prefix_len=4)
    with pytest.raises(ValueError, match=r"\[B, 32, 32, 3\]"):
        lam.encode(_frames(2)[:, :16], _frames(2)[:, :16])
    with pytest.raises(ValueError, match="batch dimension"):
        lam.encode(_frames(1)[0], _frames(1)[0])
    with pytest.raises(ValueError, match="uint8"):
        lam.encode(_frames(2).astype(np.float32), _frames(2).astype(np.float32))
    with pytest.raises(ValueError, match="latent must be"):
        lam.decode(_frames(2), torch.zeros(2, 3, 8))


def test_nested_dropout_samples_prefixes_and_fixed_lam_uses_k() -> None:
    g = torch.Generator().manual_seed(0)
    flex = FlexLAM(LAMConfig(**IMG))
    lengths = flex.sample_prefix_len(4000, g)
    assert lengths.min() == 1 and lengths.max() == 4
    counts = torch.bincount(lengths, minlength=5)[1:].float() / 4000
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.03)
    fixed = FlexLAM(LAMConfig(**{**IMG, "nested_dropout": False}))
    assert torch.equal(fixed.sample_prefix_len(10), torch.full((10,), 4))


def test_prefix_distributions() -> None:
    pow2 = prefix_weights(8, "pow2")
    assert torch.nonzero(pow2).flatten().tolist() == [0, 1, 3, 7]  # k = 1, 2, 4, 8
    geo = prefix_weights(8, "geometric", 0.5)
    assert (geo[:-1] > geo[1:]).all() and geo.sum().item() == pytest.approx(1.0)
    assert prefix_weights(6, "pow2")[5] > 0  # K itself is always reachable


def test_encode_many_matches_one_batch_and_refuses_mismatched_lengths() -> None:
    lam = FlexLAM(LAMConfig(**IMG))
    obs, nxt = _frames(7), _frames(7, 1)
    assert torch.equal(lam.encode_many(obs, nxt, batch_size=3), lam.encode(obs, nxt))
    assert lam.encode_many(obs[:0], nxt[:0]).shape == (0, 4)
    with pytest.raises(FlexLAMError, match="differ in length"):
        lam.encode_many(obs, nxt[:5])


def test_decode_returns_obs_layout() -> None:
    lam = FlexLAM(LAMConfig(**IMG))
    obs = _frames(2)
    pred = lam.decode(obs, lam.embed(lam.encode(obs, _frames(2, 1)), prefix_len=2))
    assert pred.shape == (2, 32, 32, 3) and pred.dtype == torch.uint8
    vec = FlexLAM(LAMConfig(obs_shape=[4], obs_dtype="float32", num_tokens=3))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    out = vec.decode(x, vec.embed(vec.encode(x, x + 0.1), prefix_len=1))
    assert out.shape == (5, 4) and out.dtype == torch.float32


def test_save_load_round_trip_gives_identical_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    lam = FlexLAM(LAMConfig(**IMG))
    with torch.no_grad():  # make the FDM output non-trivial (its last layer starts at zero)
        for p in lam.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    obs, nxt = _frames(4), _frames(4, 1)
    lam.save(tmp_path / "lam")
    loaded = FlexLAM.load(tmp_path / "lam")
    tokens = lam.encode(obs, nxt)
    assert torch.equal(tokens, loaded.encode(obs, nxt))
    for k in (1, 3):
        with torch.no_grad():
            assert torch.equal(lam.decode(obs, lam.embed(tokens, k)), loaded.decode(obs, loaded.embed(tokens, k)))
    header = json.loads((tmp_path / "lam" / "config.json").read_text())
    assert header["format_version"] == FORMAT_VERSION and header["kind"] == "lam" and "library_version" in header
    assert loaded.num_tokens == 4 and loaded.codebook_size == 4


def test_load_refuses_shapes_that_disagree_with_config(tmp_path) -> None:
    FlexLAM(LAMConfig(**IMG)).save(tmp_path / "a")
    FlexLAM(LAMConfig(**{**IMG, "latent_dim": 16})).save(tmp_path / "b")
    (tmp_path / "b" / "config.json").write_text((tmp_path / "a" / "config.json").read_text())
    with pytest.raises(CheckpointError, match="do not match its config"):
        FlexLAM.load(tmp_path / "b")
