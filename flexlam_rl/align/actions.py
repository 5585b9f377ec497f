"""The real actions a translator outputs: a JSON spec of the action space, fit checks, scaling, the loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ..errors import FlexLAMError


def action_spec(space: gym.Space) -> dict[str, Any]:
    """A JSON description of an action space a translator can output."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        return {"type": "box", "shape": list(space.shape), "low": space.low.tolist(), "high": space.high.tolist()}
    raise FlexLAMError(
        f"A translator can output Discrete or 1-D Box actions, not {space}. Flatten the action space "
        f"(gymnasium.wrappers.FlattenAction) or use a Discrete/Box env."
    )


def describe(spec: Mapping[str, Any]) -> str:
    if spec["type"] == "discrete":
        return f"Discrete({spec['n']})"
    return f"Box(low={spec['low']}, high={spec['high']}, shape={tuple(spec['shape'])})"


def check_action_space_fits(spec: Mapping[str, Any], space: gym.Space, made_for: str = "") -> None:
    """Raise a clear error when an env's action space is not the one the translator was trained for (``made_for``:
    what its LAM was trained on, said in the error)."""
    try:
        got = action_spec(space)
    except FlexLAMError as exc:
        raise FlexLAMError(f"This env's action space does not fit the translator: {exc}") from None
    same = got["type"] == spec["type"] and (
        (got["type"] == "discrete" and got["n"] == spec["n"] and got["start"] == spec.get("start", 0))
        or (got["type"] == "box" and got["shape"] == list(spec["shape"])
            and np.allclose(got["low"], spec["low"]) and np.allclose(got["high"], spec["high"]))
    )
    if not same:
        raise FlexLAMError(
            f"The translator outputs actions for {describe(spec)}, but this env's action space is {space}"
            f"{f' (the LAM was trained on {made_for})' if made_for else ''}. Align a translator on data from this env "
            f"(flexlam-align), or wrap a matching env."
        )


def _bounds(spec: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    low = torch.tensor(spec["low"], dtype=torch.float32, device=device)
    high = torch.tensor(spec["high"], dtype=torch.float32, device=device)
    finite = torch.isfinite(low) & torch.isfinite(high)  # unbounded dims use [-1, 1] as the scale
    return torch.where(finite, low, -1.0), torch.where(finite, high, 1.0)


def box_to_unit(spec: Mapping[str, Any], action: torch.Tensor) -> torch.Tensor:
    """Box actions -> [-1, 1], the range of the tanh-squashed heads."""
    low, high = _bounds(spec, action.device)
    return (2 * (action - low) / (high - low) - 1).clamp(-1, 1)


def box_from_unit(spec: Mapping[str, Any], unit: torch.Tensor) -> torch.Tensor:
    low, high = _bounds(spec, unit.device)
    return low + (unit + 1) * 0.5 * (high - low)


def output_to_action(spec: Mapping[str, Any], out: torch.Tensor) -> np.ndarray:
    """Head outputs -> env actions: logits -> ints ``[B]`` (Discrete); [-1, 1] -> bounded floats ``[B, A]`` (Box)."""
    if spec["type"] == "discrete":
        return (out.argmax(-1) + spec.get("start", 0)).cpu().numpy()
    return box_from_unit(spec, out).cpu().numpy().astype(np.float32)


def action_loss(spec: Mapping[str, Any], out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits (Discrete) or MSE in [-1, 1] (Box): the loss of every action head."""
    import torch.nn.functional as F

    if spec["type"] == "discrete":
        return F.cross_entropy(out, actions.long().to(out.device) - spec.get("start", 0))
    return F.mse_loss(out, box_to_unit(spec, actions.float().to(out.device)))
