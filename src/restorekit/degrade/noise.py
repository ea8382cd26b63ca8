"""Synthetic noise models of the Noise2Noise / Neighbor2Neighbor papers.

Images are float tensors in [0, 1] (any shape whose first axis is the batch, e.g. N x C x H x W).
Gaussian sigma is given on the 0-255 scale; Poisson noise is ``poisson(lambda * x) / lambda``.
A range (``gauss:5-50``, ``poisson:5-50``) draws one parameter per image, uniformly.
Noisy outputs are *not* clipped, as in the papers' code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from restorekit.errors import NoiseSpecError

if TYPE_CHECKING:  # the training path's types; the module itself stays torch-free
    import torch

    from restorekit.randomness import SampleRandom

NOISE_PRESETS: dict[str, str] = {
    "gauss25": "gauss:25",
    "gauss5_50": "gauss:5-50",
    "poisson30": "poisson:30",
    "poisson5_50": "poisson:5-50",
}

_VALID_FORMS = (
    "valid noise specs: a preset (" + ", ".join(NOISE_PRESETS) + "), 'gauss:SIGMA', "
    "'gauss:LOW-HIGH' (sigma on the 0-255 scale), 'poisson:LAMBDA', 'poisson:LOW-HIGH'"
)
_SPEC = re.compile(r"^(gauss|poisson):(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$")


@dataclass(frozen=True)
class NoiseModel:
    """Additive Gaussian or Poisson (shot) noise with a fixed or uniformly drawn parameter.

    ``low``/``high`` are sigma on the 0-255 scale (Gaussian) or lambda (Poisson); they are equal
    for a fixed level.
    """

    kind: Literal["gauss", "poisson"]
    low: float
    high: float

    @property
    def spec(self) -> str:
        """The canonical spec string, e.g. ``gauss:25`` or ``poisson:5-50``."""
        level = f"{self.low:g}" if self.low == self.high else f"{self.low:g}-{self.high:g}"
        return f"{self.kind}:{level}"

    def __call__(self, clean: torch.Tensor, rng: SampleRandom) -> torch.Tensor:
        """Noisy copy of a batch ``clean`` (N x ...), float in [0, 1]; one level per sample,
        each sample drawn from its own stream of ``rng``."""
        shape = (clean.shape[0],) + (1,) * (clean.dim() - 1)
        level = (self.low + (self.high - self.low) * rng.rand()).view(shape).to(clean.dtype)
        if self.kind == "gauss":
            noise = rng.randn(*clean.shape[1:]).to(clean.dtype)
            return clean + noise * (level / 255.0)
        return rng.poisson(clean.clamp_min(0) * level) / level

    def sample_numpy(self, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Noisy float32 copy of one image (any shape, values in [0, 1]), drawn with ``rng``.

        This is the evaluation path: the papers' code draws validation noise with NumPy in
        float64, one level per image.
        """
        level = self.low + (self.high - self.low) * rng.uniform()
        x = clean.astype(np.float64)
        if self.kind == "gauss":
            noisy = x + rng.normal(size=x.shape) * (level / 255.0)
        else:
            noisy = rng.poisson(np.clip(x, 0, None) * level) / level
        return noisy.astype(np.float32)


def parse_noise(spec: str) -> NoiseModel:
    """Parse a preset name (``gauss25``) or a spec (``gauss:25``, ``poisson:5-50``)."""
    text = NOISE_PRESETS.get(spec.strip(), spec.strip())
    match = _SPEC.match(text)
    if match is None:
        raise NoiseSpecError(f"cannot parse noise spec {spec!r}; {_VALID_FORMS}")
    kind, low_text, high_text = match.groups()
    low = float(low_text)
    high = float(high_text) if high_text is not None else low
    if high < low:
        raise NoiseSpecError(f"noise spec {spec!r}: the range's low end exceeds its high end")
    if kind == "poisson" and low <= 0:
        raise NoiseSpecError(f"noise spec {spec!r}: Poisson lambda must be positive")
    return NoiseModel(kind=kind, low=low, high=high)  # type: ignore[arg-type]
