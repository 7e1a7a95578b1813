"""leapscreen: predict perturbation responses of unscreened cancer models with LEAP."""

from leapscreen._version import __version__

__all__ = ["__version__"]
