"""FSQ tokens and per-slot code usage."""

from __future__ import annotations

import pytest
import torch

from flexlam_rl.quantize import FSQ, code_usage


@pytest.mark.parametrize("levels", [[8], [4], [3], [5, 3], [8, 5, 5]])
def test_every_index_round_trips(levels: list[int]) -> None:
    fsq = FSQ(levels)
    indices = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(indices)
    assert codes.abs().max() <= 1.0
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    requantized, again = fsq(torch.atanh(codes.clamp(-0.999, 0.999)) * 10)  # large inputs saturate to grid ends
    assert again.min() >= 0 and again.max() < fsq.codebook_size


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
