"""What a LAM learned: held-out error per budget, controllability and collapse, token probes, rate-distortion
analysis, and the figures ``flexlam-inspect`` draws."""

from .diagnosis import controllability, diagnose
from .reconstruction import reconstruction_by_budget

__all__ = ["controllability", "diagnose", "reconstruction_by_budget"]
