"""The library version, in its own module so that ``checkpoint`` can record it without importing the package root."""

__version__ = "0.2.0"
