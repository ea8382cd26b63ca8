"""The super-resolution benchmark protocol of the EDSR paper (Set5, Set14, B100, Urban100, DIV2K).

For each HR image, taken as 8-bit:

- a grey image is replicated to RGB (as the papers' code does with Set14's grey image), so the
  Y channel below is computed the same way for every image;
- the image is mod-cropped to the scale (its last ``H % scale`` rows and ``W % scale`` columns
  dropped) and its LR image made with MATLAB-compatible bicubic ``imresize(HR, 1 / scale)``,
  rounded to 8 bits as the benchmark LR files are (:func:`restorekit.data.make_lr`);
- the model's output is clipped to [0, 1] and rounded to 8 bits;
- PSNR and SSIM (Gaussian window 11, sigma 1.5) on the unrounded BT.601 Y channel (or on RGB with
  ``y_channel=False``), after removing ``scale`` pixels from each edge;
- "before" figures (``psnr_in`` / ``ssim_in``): the bicubic baseline ``imresize(LR, scale)``,
  clipped and rounded to 8 bits, scored the same way.

Figures are computed per image, then averaged. ``ensemble``: the x8 geometric self-ensemble
(EDSR+, :mod:`restorekit.infer.ensemble`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from restorekit.degrade.downscale import make_lr, mod_crop
from restorekit.degrade.resize import imresize
from restorekit.errors import ImageFormatError
from restorekit.evaluation.denoising import EvalReport
from restorekit.infer.ensemble import self_ensemble
from restorekit.io import array_to_float, float_to_array, to_uint8, write_image
from restorekit.metrics import psnr, ssim
from restorekit.pixels import to_unit


def benchmark_pair(
    hr: np.ndarray, scale: int, name: str = "image"
) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's 8-bit RGB HR image (grey replicated, mod-cropped) and its 8-bit LR image.

    ``hr``: H x W or H x W x C (C = 1 or 3), any supported dtype (converted to 8 bits).
    """
    hr = np.asarray(hr)
    hr = to_uint8(hr[..., None] if hr.ndim == 2 else hr)
    if hr.shape[2] == 1:
        hr = np.repeat(hr, 3, axis=2)
    hr = mod_crop(hr, scale, name)
    if min(hr.shape[:2]) <= 2 * scale:
        raise ImageFormatError(
            f"{name}: image is {hr.shape[0]}x{hr.shape[1]} after mod-crop, too small for x{scale} "
            f"evaluation ({scale} border pixels are removed from each edge)"
        )
    return hr, make_lr(hr, scale, round_lr=True)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The baseline: 8-bit H x W x C ``lr`` upscaled by MATLAB bicubic, clipped, 8-bit."""
    height, width = lr.shape[:2]
    up = imresize(to_unit(lr, np.float64), output_shape=(height * scale, width * scale))
    return float_to_array(np.clip(up, 0.0, 1.0).transpose(2, 0, 1), np.uint8)


def saved_names(name: str, scale: int) -> tuple[str, str, str]:
    """The files ``save_dir`` receives for the image ``name``: LR, bicubic and upscaled PNGs."""
    stem = Path(name).stem
    return f"{stem}_lr.png", f"{stem}_bicubic.png", f"{stem}_x{scale}.png"


def evaluate_upscaling(
    upscale: Callable[[np.ndarray], np.ndarray],
    hr_images: Sequence[np.ndarray],
    names: Sequence[str],
    scale: int,
    y_channel: bool = True,
    ensemble: bool = False,
    save_dir: str | Path | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score ``upscale`` (C x h x w float32 LR in [0, 1] -> C x (scale h) x (scale w) float) on
    HR ``hr_images`` (H x W x C, see the module docstring); ``save_dir`` receives each image's
    8-bit LR, bicubic and upscaled PNGs."""

    def run(lr: np.ndarray) -> np.ndarray:
        if ensemble:
            return self_ensemble(lambda b: np.stack([upscale(i) for i in b]), lr[None])[0]
        return upscale(lr)

    border = scale
    rows: list[dict[str, float | str]] = []
    for image, name in tqdm(
        list(zip(hr_images, names, strict=True)), desc="eval", disable=not progress
    ):
        hr, lr8 = benchmark_pair(image, scale, name)
        bicubic8 = bicubic_upscale(lr8, scale)
        out = np.asarray(run(array_to_float(lr8)), dtype=np.float32)
        if out.shape != (3, *hr.shape[:2]):
            raise ImageFormatError(
                f"{name}: the model returned shape {out.shape} for an LR image of "
                f"{lr8.shape[0]}x{lr8.shape[1]}; expected (3, {hr.shape[0]}, {hr.shape[1]}) "
                f"(x{scale})"
            )
        out8 = float_to_array(np.clip(out, 0.0, 1.0), np.uint8)
        rows.append(
            {
                "name": name,
                "psnr_in": psnr(hr, bicubic8, crop_border=border, y_channel=y_channel),
                "ssim_in": ssim(hr, bicubic8, crop_border=border, y_channel=y_channel),
                "psnr": psnr(hr, out8, crop_border=border, y_channel=y_channel),
                "ssim": ssim(hr, out8, crop_border=border, y_channel=y_channel),
            }
        )
        if save_dir is not None:
            saved = zip(saved_names(name, scale), (lr8, bicubic8, out8), strict=True)
            for file_name, pixels in saved:
                write_image(Path(save_dir) / file_name, pixels)
    columns = ("psnr_in", "ssim_in", "psnr", "ssim")
    means = {c: float(np.mean([r[c] for r in rows])) for c in columns}
    return EvalReport(
        noise=None,
        repeats=1,
        seed=0,
        n_images=len(rows),
        images=rows,
        scale=scale,
        ensemble=ensemble,
        y_channel=y_channel,
        crop_border=border,
        psnr_in=means["psnr_in"],
        ssim_in=means["ssim_in"],
        psnr=means["psnr"],
        ssim=means["ssim"],
    )


def format_upscaling_report(report: EvalReport, label: str = "Model") -> str:
    """One summary line: the bicubic baseline, then the model (``label``, "+" if ensembled)."""
    name = label + ("+" if report.ensemble else "")
    return (
        f"Bicubic: PSNR = {report.psnr_in:.4f} / SSIM = {report.ssim_in:.4f}; "
        f"{name}: PSNR = {report.psnr:.4f} / SSIM = {report.ssim:.4f}"
    )
