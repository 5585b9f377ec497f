"""flexlam-rl: variable-length latent action models (FlexLAM) for Gymnasium.

Public surface::

    from flexlam_rl import FlexLAM, Translator, LatentActionWrapper
    lam = FlexLAM.load("runs/quickstart/lam")
    tokens = lam.encode(obs, next_obs)          # [B, K] int64
    latent = lam.embed(tokens, prefix_len=2)    # [B, K, D], slots >= 2 hold the null latent
    pred = lam.decode(obs, latent)              # next observation, same layout as obs
    translator = Translator.load("runs/quickstart/translator")
    env = LatentActionWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"), lam, translator, prefix_len=2)

Importing the package registers ``flexlam/<task>-v0`` and ``flexlam/LatentAction-v0``
with Gymnasium (``gym.make("flexlam_rl:flexlam/LatentAction-v0", ...)`` works from any client).
"""

from typing import Any

from ._layout import extend_package_path as _extend_package_path

_extend_package_path(__path__)

import gymnasium as _gym  # noqa: E402

from . import envs as _envs  # noqa: E402,F401  (registers flexlam/<task>-v0)
from .config import LAMConfig  # noqa: E402
from .model import FlexLAM, null_fill  # noqa: E402

__version__ = "0.1.0"

LATENT_ENV_ID = "flexlam/LatentAction-v0"
if LATENT_ENV_ID not in _gym.registry:
    _gym.register(LATENT_ENV_ID, entry_point="flexlam_rl.wrappers:make_latent_env")

_LAZY = {  # these pull in stable-baselines3; load them on first use
    "Translator": "flexlam_rl.align",
    "LatentActionWrapper": "flexlam_rl.wrappers",
    "LatentActionVecEnv": "flexlam_rl.wrappers",
    "LatentActionVectorWrapper": "flexlam_rl.wrappers",
    "register_latent_env": "flexlam_rl.wrappers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flexlam_rl' has no attribute {name!r}")


__all__ = ["FlexLAM", "LAMConfig", "LATENT_ENV_ID", "Translator", "LatentActionWrapper", "LatentActionVecEnv",
           "LatentActionVectorWrapper", "null_fill", "register_latent_env", "__version__"]
