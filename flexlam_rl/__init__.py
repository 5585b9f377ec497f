"""flexlam-rl: variable-length latent action models (FlexLAM) for Gymnasium.

Public surface::

    from flexlam_rl import FlexLAM, Translator, LatentActionWrapper
    lam = FlexLAM.load("runs/quickstart/lam")
    tokens = lam.encode(obs, next_obs)          # [B, K] int64
    latent = lam.embed(tokens, prefix_len=2)    # [B, K, D], slots >= 2 hold the null latent
    pred = lam.decode(obs, latent)              # next observation, same layout as obs
    translator = Translator.load("runs/quickstart/translator")
    env = LatentActionWrapper(gym.make("MiniGrid-DoorKey-5x5-v0"), lam, translator, prefix_len=2)
    report = diagnose(lam, ["flexlam/minigrid-doorkey/noisy50-v0"])  # do the tokens matter? (controllability)

Importing the package registers ``flexlam/<task>-v0`` and ``flexlam/LatentAction-v0``
with Gymnasium (``gym.make("flexlam_rl:flexlam/LatentAction-v0", ...)`` works from any client).
The SB3 ``VecEnv`` form of the wrapper is ``flexlam_rl.agents.LatentActionVecEnv``.
"""

from pathlib import Path as _Path

import gymnasium as _gym

if not (_Path(__file__).parent / "envs").is_dir() and (_Path(__file__).parent.parent / "envs" / "__init__.py").is_file():
    import importlib.util as _util

    if _util.find_spec("flexlam_rl.envs") is None:  # the bare source folder shadows a regular install
        raise ImportError(
            f"flexlam_rl was imported from its source folder {_Path(__file__).parent}, where envs/, agents/ and configs/ "
            f"are not subpackages (an install maps them in). Run from outside the repository, or install it in "
            f"editable mode: pip install -e ."
        )

from . import envs as _envs  # noqa: E402,F401  (registers flexlam/<task>-v0)
from ._version import __version__
from .act.wrappers import (
    AdaptiveLatentActionWrapper,
    LatentActionVectorWrapper,
    LatentActionWrapper,
    TokenCost,
    TokenCostVector,
    register_latent_env,
)
from .align import Translator
from .config import LAMConfig
from .errors import FlexLAMError, FlexLAMWarning
from .evaluate.diagnosis import diagnose
from .model.lam import FlexLAM, null_fill

LATENT_ENV_ID = "flexlam/LatentAction-v0"
if LATENT_ENV_ID not in _gym.registry:
    _gym.register(LATENT_ENV_ID, entry_point="flexlam_rl.act.wrappers:make_latent_env")

__all__ = [
    "LATENT_ENV_ID",
    "AdaptiveLatentActionWrapper",
    "FlexLAM",
    "FlexLAMError",
    "FlexLAMWarning",
    "LAMConfig",
    "LatentActionVectorWrapper",
    "LatentActionWrapper",
    "TokenCost",
    "TokenCostVector",
    "Translator",
    "__version__",
    "diagnose",
    "null_fill",
    "register_latent_env",
]
