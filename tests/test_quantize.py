"""FSQ tokens and per-slot code usage."""

from __future__ import annotations

import pytest
import torch

from flexlam_rl.model.quantize import FSQ, code_usage


@pytest.mark.parametrize("levels", [[2], [8], [4], [3], [5, 3], [8, 5, 5], [2, 2, 2]])
def test_every_index_round_trips_and_forward_reaches_every_code(levels: list[int]) -> None:
    fsq = FSQ(levels)
    indices = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(indices)
    assert codes.abs().max() <= 1.0
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    for dim, level in enumerate(levels):  # each dimension is quantized on its own: sweep one at a time
        z = torch.zeros(4001, len(levels))
        z[:, dim] = torch.linspace(-10, 10, 4001)
        requantized, again = fsq(z)
        assert torch.isfinite(requantized).all()  # 2-level tokens used to be NaN
        assert torch.equal(fsq.indices_to_codes(again), requantized)  # forward's codes are the grid points of its indices
        digits = torch.round(requantized[:, dim] * (level // 2) + level // 2)
        assert set(digits.tolist()) == set(range(level))  # every level of this dimension is reachable


def test_quantizer_reaches_all_codes_and_passes_gradients() -> None:
    fsq = FSQ([8])
    z = torch.linspace(-4, 4, 1000).unsqueeze(-1).requires_grad_()
    codes, indices = fsq(z)
    assert set(indices.tolist()) == set(range(8))
    codes.sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # straight-through estimator


def test_code_usage_detects_collapse() -> None:
    collapsed = torch.zeros(100, 2, dtype=torch.long)
    uniform = torch.arange(8).repeat(25).unsqueeze(-1)
    assert torch.allclose(code_usage(collapsed, 8), torch.ones(2))
    assert code_usage(uniform, 8).item() == pytest.approx(8.0, rel=1e-4)


def test_bad_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="levels"):
        FSQ([1])
    with pytest.raises(ValueError, match="levels"):
        FSQ([])


def test_code_usage_scales_to_large_codebooks() -> None:
    """V = 65536 (the largest codebook a config allows): counted by bincount, not a [N, K, V] one-hot (2 GB here)."""
    indices = torch.stack([torch.arange(1000) * 60, torch.zeros(1000, dtype=torch.long)], dim=1).repeat(8, 1)  # [8000, 2]
    usage = code_usage(indices, 65536)
    assert usage[0].item() == pytest.approx(1000.0, rel=1e-4) and usage[1].item() == pytest.approx(1.0)


@pytest.mark.parametrize("levels", [[8], [5, 3]])
def test_a_regressed_value_snaps_to_the_code_its_quantization_gives(levels) -> None:
    """What a latent BC policy that regresses the value before quantization picks: the same code and index as the
    LAM's own quantization of that value, and values past the grid take its end code."""
    fsq = FSQ(levels)
    z = torch.randn(500, 8, len(levels)) * 2
    codes, indices = fsq(z)
    assert torch.allclose(fsq.snap(fsq._bound(z)), codes) and torch.equal(fsq.values_to_indices(fsq._bound(z)), indices)
    far = torch.full((1, len(levels)), 100.0)
    assert torch.equal(fsq.snap(far), fsq.snap(fsq._bound(far)))  # the top code, as the bounded value gives
