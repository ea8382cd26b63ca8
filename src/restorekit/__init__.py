"""restorekit: image restoration in PyTorch.

Self-supervised denoising (Neighbor2Neighbor, Noise2Noise, Noise2Void), supervised reference
(Noise2Clean) and super-resolution. Images are float32 in [0, 1], channels first, inside the
library; arrays at the edges keep the caller's dtype.
"""

__version__ = "0.1.0"


def load_model(name_or_path, device: str = "cpu"):  # noqa: ANN001, ANN201 - re-exported below
    """Load a shipped model by name, a model file, or a training run folder."""
    from restorekit.infer import load_model as _load

    return _load(name_or_path, device)


__all__ = ["__version__", "load_model"]
