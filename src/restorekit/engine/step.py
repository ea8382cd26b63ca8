"""One optimizer step, and the pieces it needs, built from a config.

Shared by the training loop and the speed benchmark, so both time and run the same step.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from restorekit.configs.schema import Config
from restorekit.degrade.noise import NoiseModel, parse_noise
from restorekit.devices import bf16_is_native
from restorekit.engine.distributed import DistributedContext, wrap
from restorekit.errors import ConfigError
from restorekit.layout import in_layout
from restorekit.methods import LossOutput, Progress, TrainingMethod, build_method
from restorekit.methods.base import NetworkCall
from restorekit.nets import build_net
from restorekit.randomness import SampleRandom


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse fp16 off the GPU; warn when bf16 runs on a CPU without native bf16 (slow)."""
    if device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no bf16; use fp16 "
            "(with loss scaling) or fp32"
        )
    if device.type == "cuda" or precision == "fp32":
        return
    if precision == "fp16":
        raise ConfigError(
            "train.precision=fp16 needs a CUDA GPU; on CPU use train.precision=bf16 "
            "(fast where the CPU has AVX512-BF16 or AMX) or fp32"
        )
    if not bf16_is_native(device):
        warnings.warn(
            "train.precision=bf16 on a CPU without native bf16: emulated, likely slower than fp32",
            stacklevel=2,
        )


def ema_decay_with_warmup(decay: float):
    """The weight average's update (``AveragedModel``'s ``multi_avg_fn``) for train.ema: after
    ``n`` earlier updates the average moves by ``1 - d`` towards the new weights, with
    ``d = min(decay, (1 + n) / (10 + n))`` (the warm-up of TensorFlow's
    ``ExponentialMovingAverage(num_updates=...)``).

    Without the warm-up the first weights keep a share ``decay ** steps`` of the average: 52 %
    after 651 steps at 0.999, so a short run, or one whose ``init_from`` leaves layers freshly
    initialised, would save mostly its starting point (seen: an EDSR x3 run from x2 weights
    validated at 18.3 dB, below bicubic upscaling). With it that share is below
    ``10! / steps ** 9`` (under 1e-11 after 100 steps) and a long run's average is unchanged
    (the decay reaches ``decay`` after ``(10 * decay - 1) / (1 - decay)`` updates: 8,991 at 0.999).
    ``n`` stays a tensor on the weights' device: no host synchronisation per step.
    """

    @torch.no_grad()
    def update(averages: list, weights: list, n: torch.Tensor) -> None:
        if not (torch.is_floating_point(averages[0]) or torch.is_complex(averages[0])):
            for average, weight in zip(averages, weights, strict=True):  # integer buffers
                average.copy_(weight)
            return
        n = n.double()
        step = (1 - torch.clamp((1 + n) / (10 + n), max=decay)).to(averages[0].dtype)
        moves = torch._foreach_sub(weights, averages)
        torch._foreach_mul_(moves, step)
        torch._foreach_add_(averages, moves)

    return update


@dataclass
class Stepper:
    model: nn.Module  # the network itself: what checkpoints and validation use
    net: nn.Module  # what training calls: ``model``, maybe wrapped by DDP and torch.compile
    method: TrainingMethod
    optimizer: torch.optim.Optimizer
    noise: NoiseModel | None  # drawn per batch; None: the training data are noisy already
    device: torch.device
    memory_format: torch.memory_format
    accumulate: int
    amp_dtype: torch.dtype | None  # None: full fp32
    scaler: torch.amp.GradScaler
    distributed: bool = False  # ``net`` is DDP: skip gradient sync on all but the last micro-batch
    # train.ema: the exponential moving average of ``model``'s weights and buffers, updated after
    # every optimizer step; None: off
    ema: AveragedModel | None = None

    @property
    def averaged(self) -> nn.Module:
        """The network validation and saved models use: the weight average when train.ema is
        set, else ``model``."""
        return self.model if self.ema is None else self.ema.module

    @classmethod
    def from_config(cls, cfg: Config, context: DistributedContext | None = None) -> Stepper:
        """Seeded initial weights, Adam, the method and its noise model, autocast if asked."""
        context = context or DistributedContext()
        # With data.noise_once the training images are already noisy: no noise per batch.
        noise = parse_noise(cfg.noise) if cfg.noise and not cfg.data.noise_in_data else None
        method = build_method(cfg.method)
        method.check(noise, paired=cfg.data.paired)
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank
        model = build_net(cfg.model.arch, **cfg.model.model_dump(exclude={"arch"}))
        memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
        # Module.to takes memory_format at runtime; torch's overloads of it leave it out
        model = model.to(context.device, memory_format=memory_format).train()  # type: ignore[call-overload]
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=cfg.optim.lr,
            betas=cfg.optim.betas,
            weight_decay=cfg.optim.weight_decay,
        )
        precision = cfg.train.precision
        check_precision(precision, context.device)
        amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
        ema = None
        if cfg.train.ema is not None:  # a copy of the plain network, before any wrapper
            ema = AveragedModel(
                model, multi_avg_fn=ema_decay_with_warmup(cfg.train.ema), use_buffers=True
            )
        net = wrap(model, context)
        if cfg.train.compile:  # compiling a Module gives a Module (an OptimizedModule)
            net = cast(nn.Module, torch.compile(net))
        return cls(
            model,
            net,
            method,
            optimizer,
            noise,
            context.device,
            memory_format,
            cfg.train.accumulate,
            amp_dtype,
            scaler,
            context.enabled,
            ema,
        )

    def step(self, sample: dict[str, torch.Tensor], progress: Progress, lr: float) -> LossOutput:
        """One optimizer step on a loader ``sample`` (this process's share of the global batch),
        in ``accumulate`` micro-batches, then the weight average's update (train.ema). Each
        sample's noise and masks come from its own seed."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        parts: dict[str, torch.Tensor | float] = {}
        # views along the batch (the partition of arange(N).chunk): no index tensor to copy to
        # the device, and a pinned batch stays pinned for the asynchronous copy
        split = {k: v.chunk(self.accumulate) for k, v in sample.items()}
        chunks = len(split["seed"])
        for i in range(chunks):
            last = i == chunks - 1
            sync = self._no_sync() if self.distributed and not last else contextlib.nullcontext()
            with sync:
                out = self._loss({k: parts_of[i] for k, parts_of in split.items()}, progress)
                self.scaler.scale(out.total / chunks).backward()
            for key, value in out.parts.items():
                parts[key] = parts.get(key, 0.0) + value / chunks
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.ema is not None:  # the first update copies the weights, later ones average
            self.ema.update_parameters(self.model)
        return LossOutput(out.total.detach(), parts)

    @torch.no_grad()
    def evaluate(self, sample: dict[str, torch.Tensor], progress: Progress) -> float:
        """The method's loss on ``sample`` with the bare (or averaged, train.ema) network in eval
        mode (no update, no collective: safe on rank 0 alone)."""
        net = self.averaged
        net.eval()
        try:
            rng = SampleRandom.for_device(sample["seed"], self.device)
            tensors = {k: self._to_device(v) for k, v in sample.items() if k != "seed"}
            batch = self.method.make_batch(tensors, self.noise, rng)
            return float(self.method.loss(self._laid_out(net), batch, progress, rng).total)
        finally:
            net.train()

    def _no_sync(self) -> contextlib.AbstractContextManager[None]:
        """DDP's ``no_sync``: no gradient all-reduce in this micro-batch (``distributed`` only:
        ``net`` is DDP, or torch.compile's wrapper of it, which forwards the attribute)."""
        return cast(nn.parallel.DistributedDataParallel, self.net).no_sync()

    def _loss(self, sample: dict[str, torch.Tensor], progress: Progress) -> LossOutput:
        rng = SampleRandom.for_device(sample["seed"], self.device)
        tensors = {k: self._to_device(v) for k, v in sample.items() if k != "seed"}
        batch = self.method.make_batch(tensors, self.noise, rng)
        with torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        ):
            return self.method.loss(self._laid_out(self.net), batch, progress, rng)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return in_layout(tensor.to(self.device, non_blocking=True), self.memory_format)

    def _laid_out(self, net: nn.Module) -> NetworkCall:
        """``net`` with every input put in the training layout first: methods make inputs by
        indexing (Neighbor2Neighbor's sub-images), which leaves them NCHW."""
        return lambda x: net(in_layout(x, self.memory_format))
