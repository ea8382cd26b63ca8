"""The README's main job: denoise sample photographs with a shipped model and report PSNR/SSIM.

The photographs are scikit-image's public-domain samples (``pip install restorekit[samples]``);
the noise is drawn from a fixed seed, so the printed figures are reproducible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from restorekit.degrade import parse_noise
from restorekit.errors import RestorekitError
from restorekit.infer import RestorationModel
from restorekit.io import float_to_array, write_image
from restorekit.metrics import psnr, ssim

SAMPLES = ("astronaut", "chelsea", "coffee")


def sample_photographs() -> dict[str, np.ndarray]:
    """scikit-image's sample photographs, H x W x 3 uint8 RGB."""
    try:
        from skimage import data
    except ImportError:
        raise RestorekitError(
            "the sample photographs come with scikit-image: pip install 'restorekit[samples]' "
            "(or denoise your own images with `restorekit denoise`)"
        ) from None
    return {name: getattr(data, name)() for name in SAMPLES}


def run_demo(model: RestorationModel, out_dir: str | Path, noise_spec: str, seed: int = 0):
    """Add noise to each sample, denoise it, write the PNGs; yield (name, before, after) figures."""
    noise = parse_noise(noise_spec)
    for index, (name, clean) in enumerate(sample_photographs().items()):
        noisy = noise.sample_numpy(
            clean.transpose(2, 0, 1) / 255.0, np.random.default_rng([seed, index])
        )
        denoised = model.denoise(noisy.transpose(1, 2, 0))
        noisy8 = float_to_array(noisy, np.uint8)
        out8 = float_to_array(np.clip(denoised, 0, 1).transpose(2, 0, 1), np.uint8)
        write_image(Path(out_dir) / f"{name}_clean.png", clean)
        write_image(Path(out_dir) / f"{name}_noisy.png", noisy8)
        write_image(Path(out_dir) / f"{name}_denoised.png", out8)
        yield (
            name,
            (psnr(clean, noisy8), ssim(clean, noisy8)),
            (psnr(clean, out8), ssim(clean, out8)),
        )
