"""How long an epoch is and what the learning rate is at each step."""

from __future__ import annotations

from restorekit.configs.schema import Config
from restorekit.errors import ConfigError


def steps_per_epoch(config: Config, n_images: int, world_size: int) -> int:
    """Steps per epoch (``n_images`` x ``data.repeat`` samples); the global batch must split
    evenly over processes and micro-batches."""
    tc = config.train
    if tc.batch_size % (world_size * tc.accumulate):
        raise ConfigError(
            f"train.batch_size={tc.batch_size} (the global batch) must be divisible by the "
            f"number of processes ({world_size}) x train.accumulate ({tc.accumulate})"
        )
    steps = n_images * config.data.repeat // tc.batch_size
    if steps == 0:
        raise ConfigError(
            f"{n_images} training image(s) x data.repeat={config.data.repeat} is less than one "
            f"batch of train.batch_size={tc.batch_size}; raise data.repeat or lower the batch size"
        )
    return steps


def learning_rate(config: Config, step: int, total_steps: int) -> float:
    """Learning rate of step ``step`` (from 1): times ``gamma`` after each milestone fraction,
    and times ``step / warmup_steps`` during the warm-up."""
    optim = config.optim
    passed = sum(step > m * total_steps for m in optim.milestones)
    warmup = min(1.0, step / optim.warmup_steps) if optim.warmup_steps else 1.0
    return optim.lr * optim.gamma**passed * warmup
