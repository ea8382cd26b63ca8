"""Neighbor2Neighbor: self-supervised denoising from single noisy images (Huang et al. 2021).

Loss = lambda1 * ||f(g1(y)) - g2(y)||^2
     + lambda2 * r * ||f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y)))||^2,
with g1, g2 the random neighbour sub-samplers, f(y) computed without a graph, and the regulariser
weight ramped as r = epoch / epochs * increase_ratio (epoch from 1), as in the authors' code.
The paper's gamma is lambda2 * increase_ratio at the end of training (2 by default).

``ramp_start`` (0 in the authors' code) is where the ramp starts, as a fraction of its end:
r = (ramp_start + (1 - ramp_start) * epoch / epochs) * increase_ratio. A fine-tuning stage that
starts from a trained model sets it to 1 and keeps the regulariser at its end weight throughout,
instead of restarting it near 0: 20 steps from ``ne2ne-gauss25`` of commit ae361cc (lr warming up to
1e-5) moved validation (first 12 T91 images, sigma 25) from 30.33 dB to 30.13 with ramp_start 0
and to 30.30 with 1 (the regulariser-free loss at the ramp's start pulls a trained model away).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from restorekit.degrade.noise import NoiseModel
from restorekit.methods.base import Batch, LossOutput, NetworkCall, Progress, TrainingMethod
from restorekit.methods.neighbor_sampler import draw_neighbour_pairs, subsample
from restorekit.randomness import SampleRandom


@dataclass
class Neighbor2Neighbor(TrainingMethod):
    lambda1: float = 1.0
    lambda2: float = 1.0
    increase_ratio: float = 2.0
    ramp_start: float = 0.0
    name = "ne2ne"

    def regulariser_ramp(self, progress: Progress) -> float:
        """r of the module docstring: from ramp_start to 1, times increase_ratio."""
        fraction = progress.epoch / progress.epochs
        return (self.ramp_start + (1.0 - self.ramp_start) * fraction) * self.increase_ratio

    def make_batch(self, sample, noise: NoiseModel | None, rng) -> Batch:
        if noise is None:  # a folder of real noisy images: no clean data at all
            return Batch(input=sample["image"])
        return Batch(input=noise(sample["image"], rng), clean=sample["image"])

    def loss(
        self, net: NetworkCall, batch: Batch, progress: Progress, rng: SampleRandom
    ) -> LossOutput:
        noisy = batch.input
        pos1, pos2 = draw_neighbour_pairs(rng, *noisy.shape[-2:])
        noisy_sub1, noisy_sub2 = subsample(noisy, pos1), subsample(noisy, pos2)
        with torch.no_grad():
            denoised = net(noisy)
        exp_diff = subsample(denoised, pos1) - subsample(denoised, pos2)

        diff = net(noisy_sub1) - noisy_sub2
        ramp = self.regulariser_ramp(progress)
        rec = torch.mean(diff**2)
        reg = torch.mean((diff - exp_diff.to(diff.dtype)) ** 2)
        total = self.lambda1 * rec + self.lambda2 * ramp * reg
        return LossOutput(
            total,
            {
                "loss": total.detach(),
                "loss_rec": rec.detach(),
                "loss_reg": reg.detach(),
                "reg_weight": self.lambda2 * ramp,
            },
        )
