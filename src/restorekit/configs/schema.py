"""Validated training configurations (pydantic).

A config is a YAML file (or a preset name, see :mod:`restorekit.configs`) with the sections below.
Every field is checked where it is declared; a bad value fails at load with its dotted name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from restorekit.blind_spots import box_side, parse_struct_mask
from restorekit.degrade.noise import parse_noise
from restorekit.errors import ConfigError, ImageFormatError, NoiseSpecError
from restorekit.io.axes import parse_axes
from restorekit.units import parse_duration


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
    increase_ratio: float = Field(
        2.0, ge=0, description="regulariser ramp end: epoch/epochs x this (see ramp_start)"
    )
    ramp_start: float = Field(
        0.0,
        ge=0,
        le=1,
        description="ramp start, a fraction of its end (1: fine-tune at full weight)",
    )


class N2VConfig(_Section):
    """Noise2Void (N2V2 with the median manipulator, structN2V with a struct mask)."""

    name: Literal["n2v"] = "n2v"
    masked_fraction: float = Field(
        0.00198, gt=0, le=0.25, description="share of pixels masked (0.00198: the paper's 0.198%)"
    )
    manipulator: Literal[
        "uniform_withCP", "uniform_withoutCP", "normal_withoutCP", "mean", "median"
    ] = Field("uniform_withCP", description="how masked pixels are replaced (median: N2V2)")
    radius: int = Field(2, ge=1, le=16, description="neighbourhood radius of the manipulator")
    struct_mask: list | None = Field(
        None, description="structN2V: 0/1 array (odd sizes, centred) of correlated neighbours"
    )
    channels: Literal["shared", "independent"] = Field(
        "shared", description="one set of blind spots for all channels, or one per channel"
    )
    criterion: Literal["l2", "l1"] = "l2"

    @field_validator("struct_mask")
    @classmethod
    def _struct_mask(cls, value: list | None) -> list | None:
        if value is None:
            return None
        try:
            parse_struct_mask(value)
        except ConfigError as error:
            raise ValueError(str(error)) from None
        return value


class SRConfig(_Section):
    """Super-resolution: supervised, LR made from HR by MATLAB bicubic (needs data.scale)."""

    name: Literal["sr"] = "sr"
    criterion: Literal["l1", "l2"] = "l1"


MethodConfig = Annotated[
    N2CConfig | N2NConfig | Ne2NeConfig | N2VConfig | SRConfig, Field(discriminator="name")
]


class UNetN2NConfig(_Section):
    """The Noise2Noise / Neighbor2Neighbor U-Net."""

    arch: Literal["unet-n2n"] = "unet-n2n"
    in_channels: int = Field(3, ge=1, le=4)
    out_channels: int = Field(3, ge=1, le=4)
    features: int = Field(48, ge=4, le=512, description="encoder feature count")

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of (the network's ``size_multiple``)."""
        return 32  # five 2x poolings


class UNetNe2NeConfig(_Section):
    """The Neighbor2Neighbor authors' U-Net (their tensor names, so their checkpoints load)."""

    arch: Literal["unet-ne2ne"] = "unet-ne2ne"
    in_channels: int = Field(3, ge=1, le=4)
    out_channels: int = Field(3, ge=1, le=4)
    features: int = Field(48, ge=4, le=512, description="encoder feature count")
    init: Literal["he", "authors"] = Field(
        "he",
        description="initial weights: he (default; learns from the first steps) or authors "
        "(He x 0.1 as their code: slow at first; see restorekit.nets.unet_ne2ne)",
    )

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of (the network's ``size_multiple``)."""
        return 32  # five 2x poolings


class EDSRConfig(_Section):
    """EDSR super-resolution (baseline: 16 blocks, 64 features, res_scale 1)."""

    arch: Literal["edsr"] = "edsr"
    scale: Literal[2, 3, 4] = 2
    n_blocks: int = Field(16, ge=1, le=256)
    features: int = Field(64, ge=4, le=1024)
    res_scale: float = Field(1.0, gt=0, le=1)
    in_channels: Literal[1, 3] = 3

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of (the network's ``size_multiple``)."""
        return 1


class REDNetConfig(_Section):
    """RED-Net: symmetric conv/deconv encoder-decoder with skips every two layers."""

    arch: Literal["rednet"] = "rednet"
    n_layers: Literal[10, 20, 30] = 30
    features: int = Field(64, ge=4, le=512)
    in_channels: int = Field(3, ge=1, le=4)

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of (the network's ``size_multiple``)."""
        return 1


class UNetCSBDeepConfig(_Section):
    """The CSBDeep U-Net of Noise2Void (N2V2: blurpool true, skip_top false)."""

    arch: Literal["unet-csbdeep"] = "unet-csbdeep"
    in_channels: int = Field(1, ge=1, le=4)
    out_channels: int = Field(1, ge=1, le=4)
    depth: int = Field(2, ge=1, le=6, description="resolution levels (size multiple 2**depth)")
    features: int = Field(32, ge=4, le=512, description="first level's features, doubled per level")
    kernel_size: Literal[3, 5, 7] = 3
    convs_per_level: int = Field(2, ge=1, le=4)
    batch_norm: bool = True
    residual: bool = Field(False, description="add the input to the output (in == out channels)")
    blurpool: bool = Field(False, description="N2V2 max-blur-pool downsampling")
    skip_top: bool = Field(True, description="false drops the full-resolution skip (N2V2)")
    dims: Literal[2, 3] = 2
    independent_channels: bool = Field(
        False,
        description="each channel denoised on its own by one shared network, as separate "
        "1-channel images (in == out channels); false: channels in and out jointly",
    )

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of (the network's ``size_multiple``)."""
        return 2**self.depth

    @model_validator(mode="after")
    def _residual_channels(self) -> UNetCSBDeepConfig:
        if self.residual and self.in_channels != self.out_channels:
            raise ValueError("residual needs in_channels == out_channels; set residual to false")
        if self.independent_channels and self.in_channels != self.out_channels:
            raise ValueError("independent_channels needs in_channels == out_channels")
        return self


ModelConfig = Annotated[
    UNetN2NConfig | UNetNe2NeConfig | EDSRConfig | REDNetConfig | UNetCSBDeepConfig,
    Field(discriminator="arch"),
]


NOISY_ONLY = ("n2v", "ne2ne")
"""Methods that need no clean or paired data (data.noise_once applies to them)."""


class _DataSection(_Section):
    """Fields every data kind has. A kind's ``check`` holds its rules that involve the other
    sections (the network, the method, the noise); its engine side is
    :mod:`restorekit.data.kinds`."""

    train: list[Path] = Field(default_factory=list, description="training image folders")
    repeat: int = Field(1, ge=1, description="visits of each training image per epoch")
    augment: bool = Field(True, description="random flips and 90-degree rotations")
    workers: int = Field(0, ge=0, le=64, description="data-loader worker processes")

    @field_validator("train", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str | Path) else value

    def check(self, config: Config) -> None:
        """Raise ValueError where this data does not fit ``config``'s other sections."""

    path_fields: ClassVar[tuple[str, ...]] = ("train",)
    """The fields that hold paths (made absolute in a run's config.yaml)."""

    @property
    def paired(self) -> bool:
        """Whether each training image comes with a second noisy observation (Noise2Noise)."""
        return False

    @property
    def noise_in_data(self) -> bool:
        """Whether the training images already hold the simulated noise (``noise_once``)."""
        return False


class _ValidationImages(BaseModel):
    val: Path | None = Field(None, description="clean validation images (noise from 'noise')")
    val_max_images: int | None = Field(None, ge=1, description="validate on the first N only")


class ImageDataConfig(_DataSection, _ValidationImages):
    """Folders of 2D images for denoising: clean ones with simulated noise, noisy ones, or
    noisy pairs (``pairs``)."""

    kind: Literal["images"] = "images"
    path_fields = ("train", "val", "pairs")
    pairs: Path | None = Field(None, description="n2n: second noisy folder, matched by name")
    patch_size: int = Field(256, ge=32, le=4096)
    noise_once: bool = Field(
        False,
        description="add 'noise' to each training image once (seeded) and train on that fixed "
        "noisy set, as Noise2Void's BSD68 protocol; for methods that learn from noisy images "
        "alone (n2v, ne2ne). Validation still draws its own noise",
    )
    on_device: bool | None = Field(
        None,
        description="keep the training images on the training device and cut each batch's "
        "patches there (same patches as the loader); null: on a GPU",
    )

    @property
    def paired(self) -> bool:
        return self.pairs is not None

    @property
    def noise_in_data(self) -> bool:
        return self.noise_once

    def check(self, config: Config) -> None:
        _check_multiple("data.patch_size", self.patch_size, config)
        if getattr(config.model, "dims", 2) == 3:
            raise ValueError(
                "3D networks train on TIFF stacks: set data.axes (e.g. ZYX) and data.patch_depth"
            )
        if isinstance(config.method, SRConfig):
            raise ValueError("method 'sr' trains on super-resolution data: set data.scale")
        if isinstance(config.model, EDSRConfig):
            raise ValueError("model.arch 'edsr' upscales: train it with method.name=sr")
        if self.noise_once and (config.noise is None or config.method.name not in NOISY_ONLY):
            raise ValueError(
                "data.noise_once needs a noise model (noise: e.g. gauss25) and a method that "
                f"learns from noisy images alone ({', '.join(NOISY_ONLY)}); got noise "
                f"{config.noise!r}, method {config.method.name!r}"
            )


class SRDataConfig(_DataSection, _ValidationImages):
    """Super-resolution: HR images whose LR images are made by MATLAB bicubic (or DIV2K's
    HR/ + LR_bicubic/X<scale>/ folders); validation on HR images, Y channel."""

    kind: Literal["sr"] = "sr"
    path_fields = ("train", "val")
    scale: int | list[int] | None = Field(
        None,
        description="upscaling factor (EDSR: 2-4), or a list of factors for one model whose "
        "input is upsampled first (each sample draws one)",
    )
    lr_patch_size: int = Field(48, ge=4, le=1024, description="LR patch side (HR: x scale)")
    hr_patch_size: int | None = Field(
        None,
        ge=8,
        le=4096,
        description="with upsample_input: HR patch side at every scale (LR patch: HR / scale, "
        "rounded up; lr_patch_size is then unused); required with several scales",
    )
    upsample_input: bool = Field(False, description="the net gets the bicubic-upscaled LR")
    skip_small: bool = Field(
        False,
        description="leave out training images smaller than the patch (named in a warning) "
        "instead of stopping with an error (T91 holds a few below 96 px for x2, patch 48)",
    )
    round_lr: bool = Field(
        True, description="round LR made from HR to its bit depth (as LR files are)"
    )
    layout: Literal["auto", "hr_only", "div2k"] = Field(
        "auto", description="HR-only folders, or DIV2K's HR/ + LR_bicubic/X<scale>/"
    )

    @field_validator("scale")
    @classmethod
    def _scales(cls, value: int | list[int] | None) -> int | list[int] | None:
        """Scales 2 to 8; a list holds distinct ones, and a one-element list is that scale."""
        scales = value if isinstance(value, list) else [] if value is None else [value]
        if any(not 2 <= s <= 8 for s in scales):
            raise ValueError("scales must be 2 to 8")
        if isinstance(value, list) and (not value or len(set(value)) != len(value)):
            raise ValueError("a list of scales must be non-empty and distinct")
        return value[0] if isinstance(value, list) and len(value) == 1 else value

    @property
    def scales(self) -> list[int]:
        """``scale`` as a list (empty when unset); the first is a model's default scale."""
        if self.scale is None:
            return []
        return list(self.scale) if isinstance(self.scale, list) else [self.scale]

    def check(self, config: Config) -> None:
        if not isinstance(config.method, SRConfig):
            raise ValueError(
                f"super-resolution data (data.kind sr) trains method 'sr', not "
                f"{config.method.name!r}"
            )
        if config.noise is not None:
            raise ValueError(
                f"noise must be null for method 'sr' (got {config.noise!r}): its low-resolution "
                "images are bicubic downscalings, no noise is simulated"
            )
        if self.scale is None:
            raise ValueError("data.scale is required for method 'sr' (e.g. 2, 3 or 4)")
        self._check_scales(config)
        if isinstance(config.model, EDSRConfig):
            if config.model.scale != self.scale:
                raise ValueError(
                    f"model.scale={config.model.scale} must equal data.scale={self.scale}"
                )
            if self.upsample_input:
                raise ValueError("data.upsample_input must be false for EDSR (it upscales itself)")
        elif not self.upsample_input:
            raise ValueError(
                f"model.arch {config.model.arch!r} keeps the image size: set "
                "data.upsample_input=true (it then gets the bicubic-upscaled image)"
            )

    def _check_scales(self, config: Config) -> None:
        edsr = isinstance(config.model, EDSRConfig)
        if len(self.scales) > 1 and (edsr or not self.upsample_input):
            raise ValueError(
                f"data.scale={self.scales}: several scales need a network that gets the "
                "bicubic-upscaled input (data.upsample_input=true, e.g. RED-Net); "
                + (
                    "EDSR's pixel-shuffle upsampler has one factor: train one model per scale "
                    "(x3 and x4 may start from x2 with train.init_from)"
                    if edsr
                    else "set data.upsample_input=true"
                )
            )
        if self.hr_patch_size is not None and not self.upsample_input:
            raise ValueError(
                "data.hr_patch_size is for networks that get the bicubic-upscaled input "
                "(data.upsample_input=true); set data.lr_patch_size instead"
            )
        if len(self.scales) > 1 and self.hr_patch_size is None:
            raise ValueError(
                f"data.scale={self.scales} needs data.hr_patch_size (the HR patch side shared by "
                "every scale, so that batches stay rectangular)"
            )


class StackDataConfig(_DataSection):
    """TIFF stacks of noisy data (microscopy): 2D slices or 3D volumes, memory-mapped,
    normalised per channel; a share of the slices held out for a validation loss."""

    kind: Literal["stacks"] = "stacks"
    axes: str = Field(description="axes of the files (e.g. YX, SYX, ZYX, SCZYX)")
    patch_size: int = Field(256, ge=32, le=4096)
    patch_depth: int | None = Field(
        None, ge=4, le=1024, description="stacks with Z: patch extent along Z (3D patches)"
    )
    normalization: Literal["none", "meanstd", "percentile"] = Field(
        "none",
        description="per-channel mean/std or 1-99.8 percentile scaling, from the training "
        "data, stored with the model and undone on output",
    )
    val_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of S slices held out for a validation loss"
    )

    @field_validator("axes")
    @classmethod
    def _axes(cls, value: str) -> str:
        try:
            return parse_axes(value)
        except ImageFormatError as error:
            raise ValueError(str(error)) from None

    def check(self, config: Config) -> None:
        dims = getattr(config.model, "dims", 2)
        _check_multiple("data.patch_size", self.patch_size, config)
        if self.normalization != "none" and config.noise is not None:
            raise ValueError(
                f"data.normalization={self.normalization!r} needs noise: null (the data are "
                "already noisy; simulated noise is defined on [0, 1] images)"
            )
        if isinstance(config.method, SRConfig) or isinstance(config.model, EDSRConfig):
            raise ValueError("super-resolution trains on images (data.scale), not on stacks")
        if ("Z" in self.axes) != (dims == 3):
            raise ValueError(
                f"data.axes={self.axes!r} "
                + ("has" if "Z" in self.axes else "lacks")
                + f" Z but the network is {dims}D: use model.dims=3 (unet-csbdeep) for volumes"
            )
        if dims == 3:
            if self.patch_depth is None:
                raise ValueError("data.patch_depth is required for volumes (axes with Z)")
            _check_multiple("data.patch_depth", self.patch_depth, config)
        elif self.patch_depth is not None:
            raise ValueError("data.patch_depth applies to volumes only (axes with Z)")


DataConfig = Annotated[
    ImageDataConfig | SRDataConfig | StackDataConfig, Field(discriminator="kind")
]
"""The data section: one of the kinds above, chosen by ``kind`` (see :func:`infer_data_kind`)."""

DATA_KINDS: dict[str, type[_DataSection]] = {
    "images": ImageDataConfig,
    "sr": SRDataConfig,
    "stacks": StackDataConfig,
}


def infer_data_kind(data: dict, method_name: str | None) -> str:
    """The kind of a data section written without ``kind`` (presets, configs written before
    kinds existed): stacks when it names ``axes``, super-resolution for method sr or when it
    names a scale, else image folders."""
    if data.get("axes") is not None:
        return "stacks"
    if method_name == "sr" or data.get("scale") is not None:
        return "sr"
    return "images"


def _drop_unset_foreign_fields(data: dict, kind: str) -> dict:
    """A section written without ``kind`` by an older restorekit lists every kind's fields:
    those that another kind owns and that are null or hold their default are dropped; one set
    to anything else stays and is refused with the kind it belongs to."""
    own = DATA_KINDS[kind].model_fields
    defaults = {
        name: info.get_default(call_default_factory=True)
        for other in DATA_KINDS.values()
        for name, info in other.model_fields.items()
        if name not in own
    }
    return {
        key: value
        for key, value in data.items()
        if key not in defaults or (value is not None and value != defaults[key])
    }


_HOW_TO_GET = {
    "images": "image folders: no data.axes nor data.scale",
    "sr": "super-resolution: method sr with data.scale",
    "stacks": "TIFF stacks: set data.axes, e.g. SYX or ZYX",
}


_INSTEAD = {
    ("sr", "patch_size"): "data.lr_patch_size (or data.hr_patch_size with upsample_input)",
    ("stacks", "val"): "data.val_fraction (slices held out of the stacks)",
}
"""What a data kind has in place of another kind's field."""


def _foreign_field_message(data: dict, kind: str) -> str | None:
    """Which fields of ``data`` belong to other data kinds only, and how to get those kinds."""
    own = DATA_KINDS[kind].model_fields
    lines = []
    for name in data:
        owners = [k for k, cls in DATA_KINDS.items() if name in cls.model_fields]
        if name not in own and owners:
            hints = "; ".join(_HOW_TO_GET[k] for k in owners)
            instead = _INSTEAD.get((kind, name))
            lines.append(
                f"data.{name} applies to {'/'.join(owners)} data ({hints})"
                + (f"; {kind} data has {instead}" if instead else "")
            )
    if not lines:
        return None
    return f"this data section is {kind} data (data.kind={kind}): " + "; ".join(lines)


def _check_multiple(field: str, value: int, config: Config) -> None:
    """Patch sides must be multiples of the network's size multiple, twice that for
    Neighbor2Neighbor (it trains on half-size sub-images)."""
    ne2ne = config.method.name == "ne2ne"
    multiple = config.model.size_multiple * (2 if ne2ne else 1)
    if value % multiple:
        raise ValueError(
            f"{field} must be a multiple of {multiple} for method {config.method.name!r} "
            f"(model.arch {config.model.arch!r} needs multiples of {config.model.size_multiple}"
            f"{', on half-size sub-images' if ne2ne else ''}); got {value}"
        )


class OptimConfig(_Section):
    lr: float = Field(3e-4, gt=0, le=1.0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    milestones: list[float] = Field(
        default_factory=lambda: [0.2, 0.4, 0.6, 0.8],
        description="fractions of training after which the learning rate is multiplied by gamma",
    )
    gamma: float = Field(0.5, gt=0, le=1.0, description="learning-rate decay factor")
    warmup_steps: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="steps over which the learning rate rises linearly from lr/warmup_steps to "
        "lr (0: none); for fine-tuning from a checkpoint with a fresh optimiser",
    )

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
        "fp32",
        description="autocast precision: bf16 on a GPU or on a CPU with native bf16 "
        "(AVX512-BF16/AMX: about 1.9x faster here); fp16 on a GPU only",
    )
    channels_last: bool = Field(True, description="NHWC memory layout (faster on CPU and GPU)")
    compile: bool = Field(
        False, description="torch.compile the network (CPU: at most 1.07x measured, README)"
    )
    threads: int | None = Field(None, ge=1, le=256, description="torch CPU threads")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where to train: auto takes the GPU when there is one"
    )
    log_every: int = Field(20, ge=1, description="steps between log lines")
    checkpoint_every: int = Field(200, ge=1, description="steps between resume checkpoints")
    val_every: int = Field(1, ge=1, description="epochs between validations")
    image_every: int = Field(5, ge=1, description="validations between TensorBoard samples")
    ema: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="decay of an exponential moving average of the weights (and batch-norm "
        "statistics), updated after every optimizer step, e.g. 0.999, warmed up (after n "
        "updates the decay is min(ema, (1 + n) / (10 + n))); validation, best.safetensors, "
        "last.safetensors and model.safetensors then hold the averaged weights (null: off)",
    )
    init_from: Path | None = Field(
        None, description="start from these weights (model file or run; EDSR x3/x4 from x2)"
    )
    time_budget: float | None = Field(
        None,
        description="train for this long (seconds, or 90s / 7m / 2h): after a measured warm-up "
        "the run fixes its number of steps so that the learning-rate schedule and the "
        "regulariser's ramp complete within it (replaces train.epochs; null: off)",
    )

    @field_validator("time_budget", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return None if value is None else parse_duration(value)  # type: ignore[arg-type]


class Config(_Section):
    """A whole training run."""

    method: MethodConfig = Field(default_factory=Ne2NeConfig)
    noise: str | None = Field(
        "gauss25", description="noise simulated on clean data (null: data are already noisy)"
    )
    model: ModelConfig = Field(default_factory=UNetN2NConfig)
    data: DataConfig = Field(default_factory=ImageDataConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="before")
    @classmethod
    def _default_kinds(cls, data: object) -> object:
        """A model section without ``arch`` is the N2N U-Net; a method without ``name``, ne2ne;
        a data section without ``kind``, the kind its fields name (:func:`infer_data_kind`)."""
        if not isinstance(data, dict):
            return data
        for section, key, default in (("model", "arch", "unet-n2n"), ("method", "name", "ne2ne")):
            value = data.get(section)
            if isinstance(value, dict) and key not in value:
                data = {**data, section: {key: default, **value}}
        fields = data.get("data", {})
        if isinstance(fields, dict):
            method = data.get("method")
            name = method.get("name") if isinstance(method, dict) else "ne2ne"
            kind = fields.get("kind") or infer_data_kind(fields, name)
            if kind in DATA_KINDS:
                if "kind" not in fields:
                    fields = _drop_unset_foreign_fields(fields, kind)
                message = _foreign_field_message(fields, kind)
                if message:
                    raise ValueError(message)
                data = {**data, "data": {**fields, "kind": kind}}
        return data

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
        if getattr(self.model, "dims", 2) == 3 and self.train.channels_last:
            raise ValueError(
                "train.channels_last applies to 2D networks only; set it to false for model.dims=3"
            )
        self.data.check(self)
        if isinstance(self.method, N2VConfig):
            self._check_n2v(self.method)
        if getattr(self.model, "out_channels", self.model.in_channels) != self.model.in_channels:
            raise ValueError("model.in_channels and model.out_channels must match for denoising")
        return self

    def _check_n2v(self, method: N2VConfig) -> None:
        dims = getattr(self.model, "dims", 2)
        try:
            side = box_side(method.masked_fraction, dims)
        except ConfigError as error:
            raise ValueError(f"method.masked_fraction: {error}") from None
        patch = getattr(self.data, "patch_size", side)
        if side > min(patch, getattr(self.data, "patch_depth", None) or patch):
            raise ValueError(
                f"method.masked_fraction={method.masked_fraction} gives boxes of {side} pixels, "
                f"larger than data.patch_size / patch_depth; raise the fraction"
            )
        if method.struct_mask is not None and parse_struct_mask(method.struct_mask).ndim > dims:
            raise ValueError(f"method.struct_mask has more axes than the {dims}D data")
