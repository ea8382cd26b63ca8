"""Validated training configurations (pydantic).

A config is a YAML file (or a preset name, see :mod:`restorekit.configs`) with the sections below.
Every field is checked where it is declared; a bad value fails at load with its dotted name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from restorekit.degrade.noise import parse_noise
from restorekit.errors import NoiseSpecError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class N2CConfig(_Section):
    """Noise2Clean: supervised, clean targets."""

    name: Literal["n2c"] = "n2c"
    criterion: Literal["l2", "l1"] = "l2"


class N2NConfig(_Section):
    """Noise2Noise: a second noisy observation as target."""

    name: Literal["n2n"] = "n2n"
    criterion: Literal["l2", "l1"] = "l2"


class Ne2NeConfig(_Section):
    """Neighbor2Neighbor; the regulariser's weight ramps to lambda2 * increase_ratio."""

    name: Literal["ne2ne"] = "ne2ne"
    lambda1: float = Field(1.0, ge=0, description="weight of the reconstruction term")
    lambda2: float = Field(1.0, ge=0, description="weight of the regulariser")
    increase_ratio: float = Field(2.0, ge=0, description="regulariser ramp: epoch/epochs x this")


MethodConfig = Annotated[N2CConfig | N2NConfig | Ne2NeConfig, Field(discriminator="name")]


class UNetN2NConfig(_Section):
    """The Noise2Noise / Neighbor2Neighbor U-Net."""

    arch: Literal["unet-n2n"] = "unet-n2n"
    in_channels: int = Field(3, ge=1, le=4)
    out_channels: int = Field(3, ge=1, le=4)
    features: int = Field(48, ge=4, le=512, description="encoder feature count")


class EDSRConfig(_Section):
    """EDSR super-resolution (baseline: 16 blocks, 64 features, res_scale 1)."""

    arch: Literal["edsr"] = "edsr"
    scale: Literal[2, 3, 4] = 2
    n_blocks: int = Field(16, ge=1, le=256)
    features: int = Field(64, ge=4, le=1024)
    res_scale: float = Field(1.0, gt=0, le=1)
    in_channels: Literal[1, 3] = 3


class REDNetConfig(_Section):
    """RED-Net: symmetric conv/deconv encoder-decoder with skips every two layers."""

    arch: Literal["rednet"] = "rednet"
    n_layers: Literal[10, 20, 30] = 30
    features: int = Field(64, ge=4, le=512)
    in_channels: int = Field(3, ge=1, le=4)


ModelConfig = Annotated[UNetN2NConfig | EDSRConfig | REDNetConfig, Field(discriminator="arch")]


class DataConfig(_Section):
    train: list[Path] = Field(default_factory=list, description="training image folders")
    pairs: Path | None = Field(None, description="n2n: second noisy folder, matched by name")
    val: Path | None = Field(None, description="clean validation images (noise from 'noise')")
    val_max_images: int | None = Field(None, ge=1, description="validate on the first N only")
    patch_size: int = Field(256, ge=32, le=4096)
    repeat: int = Field(1, ge=1, description="visits of each training image per epoch")
    augment: bool = Field(True, description="random flips and 90-degree rotations")
    workers: int = Field(0, ge=0, le=64, description="data-loader worker processes")

    @field_validator("train", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str | Path) else value


class OptimConfig(_Section):
    lr: float = Field(3e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    milestones: list[float] = Field(
        default_factory=lambda: [0.2, 0.4, 0.6, 0.8],
        description="fractions of training after which the learning rate is multiplied by gamma",
    )
    gamma: float = Field(0.5, gt=0, le=1.0, description="learning-rate decay factor")

    @field_validator("milestones")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0 < m < 1 for m in value) or value != sorted(value):
            raise ValueError("milestones must be increasing fractions of training in (0, 1)")
        return value


class TrainConfig(_Section):
    epochs: int = Field(100, ge=1, le=100_000)
    batch_size: int = Field(
        4, ge=1, le=65536, description="global batch per optimizer step, over all processes"
    )
    accumulate: int = Field(
        1, ge=1, le=1024, description="micro-batches per step (gradient accumulation)"
    )
    seed: int = Field(0, ge=0)
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast precision on GPU; CPU always trains in fp32"
    )
    channels_last: bool = Field(True, description="NHWC memory layout (faster on CPU and GPU)")
    compile: bool = Field(False, description="torch.compile the network (no gain measured on CPU)")
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads")
    log_every: int = Field(20, ge=1, description="steps between log lines")
    checkpoint_every: int = Field(200, ge=1, description="steps between resume checkpoints")
    val_every: int = Field(1, ge=1, description="epochs between validations")
    image_every: int = Field(5, ge=1, description="validations between TensorBoard samples")


class Config(_Section):
    """A whole training run."""

    method: MethodConfig = Field(default_factory=Ne2NeConfig)
    noise: str | None = Field(
        "gauss25", description="noise simulated on clean data (null: data are already noisy)"
    )
    model: ModelConfig = Field(default_factory=UNetN2NConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("noise")
    @classmethod
    def _noise_spec(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_noise(value).spec
        except NoiseSpecError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        multiple = 64 if self.method.name == "ne2ne" else 32
        if self.data.patch_size % multiple:
            raise ValueError(
                f"data.patch_size must be a multiple of {multiple} for method "
                f"{self.method.name!r} (the U-Net pools 5 times"
                + (", on half-size sub-images)" if multiple == 64 else ")")
                + f"; got {self.data.patch_size}"
            )
        if getattr(self.model, "out_channels", self.model.in_channels) != self.model.in_channels:
            raise ValueError("model.in_channels and model.out_channels must match for denoising")
        return self
