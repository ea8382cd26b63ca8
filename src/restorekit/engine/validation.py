"""Validation during training, by the task's benchmark protocol."""

from __future__ import annotations

import numpy as np
import torch

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
    scale: int = 1,
) -> tuple[dict[str, float], torch.Tensor]:
    """Validation PSNR/SSIM and the first output image, by the task's protocol: denoise, the
    paper's with one repeat; upscale, ``evaluate_upscaling`` at ``scale`` (Y channel, border
    ``scale``; a network that keeps the size gets the bicubic-upscaled LR image)."""
    device = next(net.parameters()).device
    multiple = getattr(net, "size_multiple", 1)
    first: list[torch.Tensor] = []

    def apply(pixels: np.ndarray) -> np.ndarray:
        out = predict(net, torch.from_numpy(pixels)[None].to(device), multiple, channels_last)[0]
        if not first:
            first.append(out.float().cpu())
        return out.float().cpu().numpy()

    channels = next(m.in_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d))

    def upscale(lr: np.ndarray) -> np.ndarray:
        if lr.shape[0] != channels:  # a grey model on the protocol's RGB images: per channel
            return np.concatenate([upscale(c[None]) for c in lr])
        if getattr(net, "scale", 1) == scale:
            return apply(lr)
        size = (lr.shape[1] * scale, lr.shape[2] * scale)
        return apply(imresize(lr.transpose(1, 2, 0), output_shape=size).transpose(2, 0, 1))

    net.eval()
    if task == "upscale":
        report = evaluate_upscaling(upscale, images, names, scale)
    else:
        assert noise is not None
        report = evaluate_denoising(apply, images, names, noise, repeats=1, seed=seed)
    net.train()
    return {"psnr": report.psnr, "ssim": report.ssim, "psnr_in": report.psnr_in}, first[0]
