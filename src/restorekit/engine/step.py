"""One optimizer step, and the pieces it needs, built from a config.

Shared by the training loop and the speed benchmark, so both time and run the same step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from restorekit.configs.schema import Config
from restorekit.data.patches import derive_seed
from restorekit.degrade.noise import NoiseModel, parse_noise
from restorekit.methods import LossOutput, Progress, TrainingMethod, build_method
from restorekit.nets import build_net


@dataclass
class Stepper:
    net: torch.nn.Module
    method: TrainingMethod
    optimizer: torch.optim.Optimizer
    noise: NoiseModel | None
    device: torch.device
    memory_format: torch.memory_format
    seed: int
    amp_dtype: torch.dtype | None  # None: full fp32
    scaler: torch.amp.GradScaler

    @classmethod
    def from_config(cls, cfg: Config, device: torch.device) -> Stepper:
        """Seeded initial weights, Adam, the method and its noise model, AMP on GPU only."""
        noise = parse_noise(cfg.noise) if cfg.noise else None
        method = build_method(cfg.method)
        method.check(noise, paired=cfg.data.pairs is not None)
        torch.manual_seed(cfg.train.seed)
        net = build_net(
            cfg.model.arch,
            in_channels=cfg.model.in_channels,
            out_channels=cfg.model.out_channels,
            features=cfg.model.features,
        )
        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        net = net.to(device, memory_format=memory_format).train()
        optimizer = torch.optim.Adam(
            net.parameters(),
            lr=cfg.optim.lr,
            betas=cfg.optim.betas,
            weight_decay=cfg.optim.weight_decay,
        )
        precision = cfg.train.precision if device.type == "cuda" else "fp32"
        amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
        return cls(
            net, method, optimizer, noise, device, memory_format, cfg.train.seed, amp_dtype, scaler
        )

    def step(self, sample: dict[str, torch.Tensor], progress: Progress, lr: float) -> LossOutput:
        """Build the batch from a loader ``sample``, compute the loss, update the weights.

        The step's randomness (noise, masks) comes from a generator seeded by (seed, step).
        """
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        generator = torch.Generator(self.device).manual_seed(derive_seed(self.seed, progress.step))
        images = sample["image"].to(self.device, memory_format=self.memory_format)
        partners = sample.get("partner")
        if partners is not None:
            partners = partners.to(self.device, memory_format=self.memory_format)
        batch = self.method.make_batch(images, partners, self.noise, generator)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            out = self.method.loss(self.net, batch, progress, generator)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(out.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return out
