"""The Neighbor2Neighbor evaluation protocol for synthetic noise.

For each clean 8-bit image and each repeat: noise drawn with NumPy from a fixed seed (one stream
per image and repeat), the unclipped noisy image fed to the model (padded to its size multiple),
the output clipped and rounded to 8 bits, PSNR and SSIM (Gaussian window 11, sigma 1.5, RGB
channels averaged) against the clean image. "Before" figures compare the noisy image, clipped and
rounded to 8 bits, with the clean one. Figures are averaged over repeats, then over images.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from restorekit.degrade.noise import NoiseModel
from restorekit.io import float_to_array, write_image
from restorekit.io.files import atomic_write
from restorekit.metrics import psnr, ssim
from restorekit.pixels import to_unit

# Repeats of the paper's code, chosen by the benchmark folder's name.
_PAPER_REPEATS = {"kodak": 10, "bsd300": 3, "set14": 20}


def default_repeats(folder: str | Path) -> int:
    """10 for Kodak, 3 for BSD300, 20 for Set14 (as the paper's code), else 1."""
    name = Path(folder).name.lower()
    return next((n for key, n in _PAPER_REPEATS.items() if name.startswith(key)), 1)


@dataclass
class EvalReport:
    """Mean figures (psnr_in / ssim_in: the degraded input, noisy or bicubic) and per image."""

    noise: str | None  # None for super-resolution (bicubic degradation)
    repeats: int
    seed: int
    psnr_in: float
    ssim_in: float
    psnr: float
    ssim: float
    n_images: int
    images: list[dict[str, float | str]] = field(default_factory=list)
    scale: int = 1  # super-resolution factor (1: denoising)
    ensemble: bool = False  # x8 geometric self-ensemble
    y_channel: bool = False  # metrics on BT.601 Y (else all channels)
    crop_border: int = 0  # pixels removed from each edge before the metrics
    backend: str | None = None  # what ran the model ("onnxruntime", "torch"), set by the caller
    left_out: list[str] = field(default_factory=list)  # unreadable images (eval --keep-going)

    def to_json(self, path: str | Path) -> None:
        """The report as JSON (``left_out`` only when images were left out)."""
        fields = asdict(self)
        if not self.left_out:
            del fields["left_out"]
        text = json.dumps(fields, indent=2) + "\n"
        atomic_write(path, lambda tmp: tmp.write_text(text))  # never a half-written report


def saved_names(name: str) -> tuple[str, str]:
    """The files ``save_dir`` receives for the image ``name``: its noisy and denoised PNGs."""
    stem = Path(name).stem
    return f"{stem}_noisy.png", f"{stem}_denoised.png"


def evaluate_denoising(
    denoise: Callable[[np.ndarray], np.ndarray],
    images: Sequence[np.ndarray],
    names: Sequence[str],
    noise: NoiseModel,
    repeats: int = 1,
    seed: int = 0,
    save_dir: str | Path | None = None,
    progress: bool = False,
) -> EvalReport:
    """Score ``denoise`` (C x H x W float32 noisy -> C x H x W float) on clean uint8 H x W x C
    ``images``; ``save_dir`` receives the first repeat's noisy and denoised 8-bit PNGs."""
    rows: list[dict[str, float | str]] = []
    for index, (clean, name) in enumerate(
        tqdm(list(zip(images, names, strict=True)), desc="eval", disable=not progress)
    ):
        scores = []
        for repeat in range(repeats):
            rng = np.random.default_rng([seed, index, repeat])
            noisy = noise.sample_numpy(to_unit(clean, np.float64).transpose(2, 0, 1), rng)
            noisy8 = float_to_array(noisy, np.uint8)
            out8 = float_to_array(np.clip(denoise(noisy), 0.0, 1.0), np.uint8)
            scores.append(
                (psnr(clean, noisy8), ssim(clean, noisy8), psnr(clean, out8), ssim(clean, out8))
            )
            if save_dir is not None and repeat == 0:
                noisy_name, denoised_name = saved_names(name)
                write_image(Path(save_dir) / noisy_name, noisy8)
                write_image(Path(save_dir) / denoised_name, out8)
        mean = np.mean(scores, axis=0)
        rows.append(
            {
                "name": name,
                "psnr_in": float(mean[0]),
                "ssim_in": float(mean[1]),
                "psnr": float(mean[2]),
                "ssim": float(mean[3]),
            }
        )
    columns = ("psnr_in", "ssim_in", "psnr", "ssim")
    means = {c: float(np.mean([r[c] for r in rows])) for c in columns}
    return EvalReport(
        noise=noise.spec,
        repeats=repeats,
        seed=seed,
        n_images=len(rows),
        images=rows,
        psnr_in=means["psnr_in"],
        ssim_in=means["ssim_in"],
        psnr=means["psnr"],
        ssim=means["ssim"],
    )


def format_report(report: EvalReport) -> str:
    """The paper code's summary line."""
    return (
        f"Before denoise: Average PSNR_b = {report.psnr_in:.4f}, SSIM_b = {report.ssim_in:.4f}; "
        f"After denoise: Average PSNR = {report.psnr:.4f}, SSIM = {report.ssim:.4f}"
    )
