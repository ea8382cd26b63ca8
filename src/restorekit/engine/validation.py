"""Validation during training, by the task's benchmark protocol."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from restorekit.data.sr import as_scales
from restorekit.degrade.noise import NoiseModel
from restorekit.degrade.resize import imresize
from restorekit.evaluation import evaluate_denoising, evaluate_upscaling
from restorekit.infer.predict import predict


def validate(
    net: torch.nn.Module,
    images: list[np.ndarray],
    names: list[str],
    noise: NoiseModel | None,
    channels_last: bool,
    seed: int,
    task: str = "denoise",
    scales: int | Sequence[int] = 1,
) -> tuple[dict[str, float], torch.Tensor]:
    """Validation PSNR/SSIM and the first output image, by the task's protocol: denoise, the
    paper's with one repeat; upscale, ``evaluate_upscaling`` at each of ``scales`` (Y channel,
    border ``scale``; a network that keeps the size gets the bicubic-upscaled LR image). With
    several scales the figures are their means, and ``psnr_x{s}`` holds each scale's PSNR."""
    device = next(net.parameters()).device
    multiple = getattr(net, "size_multiple", 1)
    first: list[torch.Tensor] = []

    def apply(pixels: np.ndarray) -> np.ndarray:
        out = predict(net, torch.from_numpy(pixels)[None].to(device), multiple, channels_last)[0]
        if not first:
            first.append(out.float().cpu())
        return out.float().cpu().numpy()

    channels = next(m.in_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d))

    def upscaler(scale: int) -> Callable[[np.ndarray], np.ndarray]:
        def upscale(lr: np.ndarray) -> np.ndarray:
            if lr.shape[0] != channels:  # a grey model on the protocol's RGB images: per channel
                return np.concatenate([upscale(c[None]) for c in lr])
            if getattr(net, "scale", 1) == scale:
                return apply(lr)
            size = (lr.shape[1] * scale, lr.shape[2] * scale)
            return apply(imresize(lr.transpose(1, 2, 0), output_shape=size).transpose(2, 0, 1))

        return upscale

    net.eval()
    if task == "upscale":
        reports = [evaluate_upscaling(upscaler(s), images, names, s) for s in as_scales(scales)]
    else:
        assert noise is not None
        reports = [evaluate_denoising(apply, images, names, noise, repeats=1, seed=seed)]
    net.train()
    keys = ("psnr", "ssim", "psnr_in")
    scores = {k: float(np.mean([getattr(r, k) for r in reports])) for k in keys}
    if len(reports) > 1:
        scores |= {f"psnr_x{r.scale}": r.psnr for r in reports}
    return scores, first[0]
