"""Validation during training by the benchmarks' protocols: the network applied to whole
images as inference applies it (padded to its size multiple)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from restorekit.degrade.noise import NoiseModel
from restorekit.degrade.resize import imresize
from restorekit.evaluation import EvalReport, evaluate_denoising, evaluate_upscaling
from restorekit.infer.predict import predict

Scores = tuple[dict[str, float], torch.Tensor]
"""Mean PSNR/SSIM (``psnr``, ``ssim``; ``psnr_in``: the input's) and the first output image."""


class _Predictor:
    """``net`` on one C x H x W image in [0, 1]; keeps the first output for TensorBoard."""

    def __init__(self, net: torch.nn.Module, channels_last: bool) -> None:
        self.net, self.channels_last = net, channels_last
        self.device = next(net.parameters()).device
        self.first: torch.Tensor | None = None

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(pixels)[None].to(self.device)
        multiple = getattr(self.net, "size_multiple", 1)
        out = predict(self.net, tensor, multiple, self.channels_last)[0].float().cpu()
        if self.first is None:
            self.first = out
        return out.numpy()


def _scores(
    net: torch.nn.Module, predictor: _Predictor, run: Callable[[], list[EvalReport]]
) -> Scores:
    """Run the evaluation with ``net`` in eval mode (then back in training mode); the means."""
    net.eval()
    try:
        reports = run()
    finally:
        net.train()
    keys = ("psnr", "ssim", "psnr_in")
    scores = {k: float(np.mean([getattr(r, k) for r in reports])) for k in keys}
    if len(reports) > 1:
        scores |= {f"psnr_x{r.scale}": r.psnr for r in reports}
    assert predictor.first is not None
    return scores, predictor.first


def denoising_scores(
    net: torch.nn.Module,
    images: list[np.ndarray],
    names: list[str],
    noise: NoiseModel,
    channels_last: bool,
    seed: int,
) -> Scores:
    """The denoising papers' protocol with one noise draw per image (seeded)."""
    apply = _Predictor(net, channels_last)
    return _scores(
        net,
        apply,
        lambda: [evaluate_denoising(apply, images, names, noise, repeats=1, seed=seed)],
    )


def upscaling_scores(
    net: torch.nn.Module,
    images: list[np.ndarray],
    names: list[str],
    scales: Sequence[int],
    channels_last: bool,
) -> Scores:
    """``evaluate_upscaling`` at each of ``scales`` (Y channel, border = scale); a network that
    keeps the size gets the bicubic-upscaled LR image. With several scales the figures are
    their means, and ``psnr_x{s}`` holds each scale's PSNR."""
    apply = _Predictor(net, channels_last)
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

    return _scores(
        net, apply, lambda: [evaluate_upscaling(upscaler(s), images, names, s) for s in scales]
    )


def psnr_line(scores: dict[str, float], before: str) -> str:
    """``PSNR x dB, SSIM y (before z dB)`` and each scale's PSNR where there are several."""
    per_scale = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if "_x" in k)
    return (
        f"PSNR {scores['psnr']:.4f} dB, SSIM {scores['ssim']:.4f} ({before} "
        f"{scores['psnr_in']:.4f} dB)" + (f"; {per_scale}" if per_scale else "")
    )
