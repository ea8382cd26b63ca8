"""The README's main job: run shipped models on sample photographs and report PSNR/SSIM.

The photographs are scikit-image's public-domain samples (``pip install restorekit[samples]``):
``astronaut``, ``chelsea`` and ``coffee`` (RGB), ``camera`` and ``coins`` (grey). Which demo a
model gets follows its descriptor:

- denoisers (task ``denoise``): the samples of their channel count (3: RGB, 1: grey) plus noise
  drawn from a fixed seed, so the printed figures are reproducible; noisy -> denoised.
- upscalers (task ``upscale``, scale ``s``): the RGB samples shrunk by MATLAB-style bicubic; the
  bicubic enlargement -> the model's, on the Y channel with ``s`` border pixels cropped (the
  EDSR papers' convention).

Conventions: images are uint8 H x W x C arrays (C = 3 for RGB, 1 for grey); float images are
in [0, 1] and become uint8 rounded half up and clipped, as in :mod:`restorekit.io`.
Each demo writes ``<sample>_<kind>.png`` into its folder and yields one row per sample:
``(sample, (psnr, ssim) before, (psnr, ssim) after)``, both against the clean photograph.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from restorekit.degrade import imresize, parse_noise
from restorekit.errors import RestorekitError
from restorekit.infer.model import RestorationModel
from restorekit.io import write_image
from restorekit.metrics import psnr, ssim
from restorekit.pixels import from_unit, to_unit

RGB_SAMPLES = ("astronaut", "chelsea", "coffee")
GREY_SAMPLES = ("camera", "coins")

Figures = tuple[float, float]  # PSNR (dB), SSIM
Row = tuple[str, Figures, Figures]  # sample, before, after


def sample_photographs(names: tuple[str, ...] = RGB_SAMPLES) -> dict[str, np.ndarray]:
    """scikit-image's sample photographs ``names``: uint8 H x W x 3 (RGB) or H x W x 1 (grey)."""
    try:
        from skimage import data
    except ImportError:
        raise RestorekitError(
            "the sample photographs come with scikit-image: pip install 'restorekit[samples]' "
            "(or denoise your own images with `restorekit denoise`)"
        ) from None
    photos = {name: getattr(data, name)() for name in names}
    return {name: p if p.ndim == 3 else p[..., None] for name, p in photos.items()}


def run_demo(
    model: RestorationModel, out_dir: str | Path, noise_spec: str | None = None, seed: int = 0
) -> tuple[str, Iterator[Row]]:
    """The demo that suits ``model``: a short description of what its rows compare, and the rows
    (lazily computed). ``noise_spec`` applies to denoisers (default: the model's own noise)."""
    if model.descriptor.task == "upscale":
        s = model.descriptor.scale
        what = f"upscale x{s}, Y channel, border {s}: bicubic -> model"
        return what, upscale_demo(model, out_dir)
    spec = parse_noise(noise_spec or model.descriptor.noise or "gauss25").spec
    return f"noise {spec}: noisy -> denoised", denoise_demo(model, out_dir, spec, seed)


def denoise_demo(
    model: RestorationModel, out_dir: str | Path, noise_spec: str, seed: int = 0
) -> Iterator[Row]:
    """Add ``noise_spec`` noise to each sample of the model's channel count (RGB for 3 channels,
    grey for 1), denoise it, write ``<sample>_clean/_noisy/_denoised.png``.

    The noise of sample ``i`` comes from ``default_rng([seed, i])``, drawn on the C x H x W
    float image; the model gets the unrounded noisy image, the figures use the rounded one.
    """
    names = {3: RGB_SAMPLES, 1: GREY_SAMPLES}.get(model.descriptor.in_channels)
    if names is None or model.descriptor.dims != 2:
        raise RestorekitError(
            f"the demo has no samples for a {model.descriptor.dims}D model taking "
            f"{model.descriptor.in_channels} channels (only 2D RGB or grey images)"
        )
    noise = parse_noise(noise_spec)
    for index, (name, clean) in enumerate(sample_photographs(names).items()):
        chw = to_unit(clean, np.float64).transpose(2, 0, 1)
        noisy = noise.sample_numpy(chw, np.random.default_rng([seed, index])).transpose(1, 2, 0)
        noisy8, denoised8 = from_unit(noisy, np.uint8), from_unit(model.denoise(noisy), np.uint8)
        _write(out_dir, name, clean=clean, noisy=noisy8, denoised=denoised8)
        yield name, _figures(clean, noisy8), _figures(clean, denoised8)


def upscale_demo(model: RestorationModel, out_dir: str | Path) -> Iterator[Row]:
    """Super-resolution x ``s`` (the model's scale) on the RGB samples.

    HR: the sample cropped to a multiple of ``s``; LR: ``imresize(HR / 255, 1 / s)`` rounded to
    uint8; bicubic: ``imresize(LR / 255, s)`` rounded; SR: ``model.upscale(LR)``. Writes
    ``<sample>_hr/_lr/_bicubic/_sr.png``; rows: bicubic -> SR, Y-channel PSNR/SSIM against HR
    with ``s`` pixels cropped from each edge.
    """
    s = model.descriptor.scale
    for name, photo in sample_photographs(RGB_SAMPLES).items():
        hr = photo[: photo.shape[0] // s * s, : photo.shape[1] // s * s]
        lr = from_unit(imresize(to_unit(hr, np.float64), 1 / s), np.uint8)
        bicubic = from_unit(imresize(to_unit(lr, np.float64), s), np.uint8)
        sr = model.upscale(lr)
        _write(out_dir, name, hr=hr, lr=lr, bicubic=bicubic, sr=sr)
        yield name, _figures(hr, bicubic, s, True), _figures(hr, sr, s, True)


def _figures(
    clean: np.ndarray, image: np.ndarray, crop_border: int = 0, y_channel: bool = False
) -> Figures:
    return (
        psnr(clean, image, crop_border, y_channel),
        ssim(clean, image, crop_border, y_channel),
    )


def _write(out_dir: str | Path, sample: str, **images: np.ndarray) -> None:
    for kind, image in images.items():
        write_image(Path(out_dir) / f"{sample}_{kind}.png", image)
