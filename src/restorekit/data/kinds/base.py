"""The interface every data kind implements, and what its pieces hand to the engine."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from restorekit.configs.schema import Config
from restorekit.degrade.noise import NoiseModel


@dataclass
class TrainData:
    """A run's training patches and what it validates on: clean (super-resolution: HR) images
    as uint8 H x W x C, or held-out noisy patches (``val_patches``, fixed loader samples for a
    validation loss). ``normalization``: the descriptor's record of the data's scaling (stacks),
    or None."""

    dataset: Dataset
    n_images: int
    val_images: list[np.ndarray]
    val_names: list[str]
    normalization: dict | None = None
    val_patches: dict[str, torch.Tensor] | None = None


@dataclass
class Validation:
    """One validation's outcome: TensorBoard scalars, the log line's figures, a sample output
    (``image``, logged under ``val/{image_tag}``) and the PSNR that picks the best model (None
    when the protocol has no PSNR)."""

    scores: dict[str, float]
    line: str
    image: torch.Tensor | None = None
    image_tag: str = ""
    psnr: float | None = None


HeldOutLoss = Callable[[dict[str, torch.Tensor]], float]
"""The training method's loss on a batch of held-out samples, without a gradient."""


@dataclass(frozen=True)
class ValidationInputs:
    """What a validation works with: the run's config and data, the network to validate (the
    weight average when there is one), the simulated noise, and the method's held-out loss."""

    config: Config
    data: TrainData
    net: torch.nn.Module
    noise: NoiseModel | None
    held_out_loss: HeldOutLoss


class DataKind(ABC):
    """Loads one kind of training data and validates by its protocol."""

    task: Literal["denoise", "upscale"] = "denoise"
    """What a network trained on this data does: same size out, or larger."""

    @abstractmethod
    def load(self, config: Config, noise: NoiseModel | None) -> TrainData:
        """The run's training and validation data (``noise``: the simulated noise, if any)."""

    @abstractmethod
    def summary(self, config: Config) -> str:
        """What the data set-up is, for the run's first log line (patch size, noise, scales)."""

    @abstractmethod
    def validate(self, given: ValidationInputs) -> Validation | None:
        """Validate ``given.net`` (in training mode, left so) by this kind's protocol; None
        when the run has nothing to validate on."""

    def descriptor_fields(self, config: Config, normalization: dict | None) -> dict[str, Any]:
        """The model descriptor's fields for what the trained network does."""
        return {"task": self.task, "scale": 1, "upsample_input": False, "scales": []}

    def cuts_on_device(self, config: Config, device: torch.device) -> bool:
        """Whether batches are cut from images held on ``device`` (see
        :mod:`restorekit.data.device`) rather than by the loader."""
        return False
