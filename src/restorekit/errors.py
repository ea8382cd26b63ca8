"""User-facing errors.

Every error that bad input can cause derives from :class:`RestorekitError`. Its message says
what is wrong, where, and how to fix it; the command line prints it without a traceback.
"""


class RestorekitError(Exception):
    """Base class of errors caused by input (files, configs, arguments), not by bugs."""


class ImageReadError(RestorekitError):
    """An image file is missing, unreadable, truncated or of an unsupported kind."""


class PixelLimitError(ImageReadError):
    """An image is larger than the pixel limit that guards against decompression bombs."""


class ImageFormatError(RestorekitError):
    """An image is readable but does not fit what is asked (channels, size, bit depth)."""


class ConfigError(RestorekitError):
    """A configuration value is missing or out of its allowed range."""


class NoiseSpecError(RestorekitError):
    """A noise specification string cannot be parsed."""


class ModelLoadError(RestorekitError):
    """A model file or name cannot be loaded (unknown name, wrong tensors, unsafe file)."""
