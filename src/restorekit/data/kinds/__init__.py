"""Data kinds: what a run trains and validates on, one plug-in per kind of data.

A kind (``data.kind`` in the config, :mod:`restorekit.configs.schema`) pairs a config section
with an object here that loads the training data, validates by its own protocol, fills the
model descriptor's fields for what the trained network does and writes its part of the run's
first log line. The engine calls these and never asks which kind it trains on.

================  ==========================================  ============================
kind              data                                        validation
================  ==========================================  ============================
``images``        folders of 2D images (denoising)            PSNR/SSIM on clean images
``sr``            HR images, LR made by MATLAB bicubic        Y-PSNR/SSIM at each scale
``stacks``        TIFF stacks, 2D slices or 3D volumes        loss on held-out slices
================  ==========================================  ============================

A new kind takes a config class in :mod:`restorekit.configs.schema` (added to ``DataConfig``
and ``DATA_KINDS``), a module here with a :class:`DataKind` subclass, and its line in ``KINDS``.
"""

from __future__ import annotations

from restorekit.configs.schema import Config
from restorekit.data.kinds.base import DataKind, TrainData, Validation, ValidationInputs
from restorekit.data.kinds.images import ImageFolders
from restorekit.data.kinds.sr import SuperResolutionImages
from restorekit.data.kinds.stacks import Stacks
from restorekit.degrade.noise import NoiseModel

KINDS: dict[str, DataKind] = {
    "images": ImageFolders(),
    "sr": SuperResolutionImages(),
    "stacks": Stacks(),
}


def data_kind(config: Config) -> DataKind:
    """The plug-in for ``config.data`` (chosen by its ``kind``)."""
    return KINDS[config.data.kind]


def load_train_data(config: Config, noise: NoiseModel | None = None) -> TrainData:
    """What a run on ``config`` trains and validates on (``noise``: its simulated noise)."""
    return data_kind(config).load(config, noise)


__all__ = [
    "KINDS",
    "DataKind",
    "TrainData",
    "Validation",
    "ValidationInputs",
    "data_kind",
    "load_train_data",
]
