"""flexlam-rl: variable-length latent action models (FlexLAM) for Gymnasium.

Public surface::

    from flexlam_rl import FlexLAM
    lam = FlexLAM.load("runs/quickstart/lam")
    tokens = lam.encode(obs, next_obs)          # [B, K] int64
    latent = lam.embed(tokens, prefix_len=2)    # [B, K, D], slots >= 2 hold the null latent
    pred = lam.decode(obs, latent)              # next observation, same layout as obs
"""

from ._layout import extend_package_path as _extend_package_path

_extend_package_path(__path__)

from .config import LAMConfig  # noqa: E402
from .model import FlexLAM, null_fill  # noqa: E402

__version__ = "0.1.0"

__all__ = ["FlexLAM", "LAMConfig", "null_fill", "__version__"]
