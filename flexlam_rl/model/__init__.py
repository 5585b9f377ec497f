"""The model: FlexLAM (IDM, FSQ tokens, null-filled prefixes, FDM), its networks, quantizer and budget rules."""

from .lam import FlexLAM, LAMOutput, null_fill

__all__ = ["FlexLAM", "LAMOutput", "null_fill"]
