"""Blind-spot masking of Noise2Void (Krull et al. 2019), N2V2 and structN2V, vectorised.

Input: a batch of patches, N x C x H x W (2D) or N x C x D x H x W (3D). Output: the manipulated
batch and a boolean mask of the same shape marking the masked (blind-spot) pixels, on which the
loss is computed against the unmanipulated input.

Where the blind spots are
    The patch is divided into boxes of side ``box_side(masked_fraction, dims)`` =
    ``round((1 / masked_fraction) ** (1 / dims))`` (22 pixels in 2D and 8 in 3D for the paper's
    0.198 %), starting at the patch origin; one pixel is drawn uniformly inside every box. Boxes
    at the far edges that the patch cuts short get their pixel from the part inside the patch,
    so every box holds exactly one blind spot (on a 64-pixel patch: 3 x 3 = 9 pixels, 0.22 %).

Channels (``channels``)
    ``"shared"`` (default): one set of blind spots per sample, the same for all channels, and
    a replacement that takes every channel from the same neighbour. The network then never sees
    any channel of a masked pixel, so this is the safe choice when the noise is correlated across
    channels (demosaicked or JPEG-compressed colour photographs). ``"independent"``: every
    channel has its own blind spots and replacements (as the n2v and careamics code do), for
    multichannel data whose noise is independent per channel but which is trained jointly, so the
    network may use the other channels at a masked position. Identical for grey data.

Replacement values (``manipulator``, neighbourhood = the ``(2 radius + 1) ** dims`` window)
    - ``uniform_withCP``: a neighbour drawn uniformly from the window, centre included.
    - ``uniform_withoutCP``: uniformly from the window without the centre.
    - ``normal_withoutCP``: from the window without the centre, offset ``o`` with probability
      proportional to ``exp(-|o|^2 / (2 sigma^2))``, ``sigma = radius / 2`` (window = 2 sigma).
    - ``mean``, ``median`` (N2V2): the mean or median of the window without the centre, per
      channel; the median of an even count is the lower middle value (``torch.nanmedian``).
    Sampling is exact: one categorical draw per blind spot over the allowed offsets, no
    redraw-on-collision shortcut that would favour one offset. Borders: offsets that leave the
    patch are not allowed (the window is cut at the border, as the original n2v code's sub-patch
    does): no clamping or reflection, so no pixel near the border is favoured, and the centre is
    never reachable by a ``withoutCP`` draw.

structN2V (``struct_mask``, Broaddus et al. 2020)
    A 1D, 2D or 3D array of 0/1 with odd sizes, centred on the blind spot (its centre entry is
    ignored): every neighbour marked 1 is replaced by a value drawn uniformly in
    ``[min, max]`` of that sample's channel in the patch (careamics' choice; the structN2V code
    draws from [-2, 2] on standardised data). A mask with fewer axes than the data applies to the
    last axes (a 1D mask runs along the width). Neighbours outside the patch are skipped (not
    clamped onto the border). Replacement values are read from the unmanipulated patch and the
    blind spots are written last, so a blind spot keeps its manipulator's value; where two blind
    spots' struct neighbourhoods overlap the larger random value is kept (deterministic).

Every random number comes from the per-sample streams of :class:`SampleRandom`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from restorekit.blind_spots import box_side, parse_struct_mask
from restorekit.devices import constant_on
from restorekit.errors import ConfigError
from restorekit.randomness import SampleRandom

Manipulator = Literal["uniform_withCP", "uniform_withoutCP", "normal_withoutCP", "mean", "median"]
MANIPULATORS: tuple[str, ...] = (
    "uniform_withCP",
    "uniform_withoutCP",
    "normal_withoutCP",
    "mean",
    "median",
)
ChannelMode = Literal["shared", "independent"]

_INT_RANGE = 2**62  # integers in [0, 2**62) reduced modulo n: bias below n / 2**62
_UNIT_BITS = 2**53  # uniform float64 in [0, 1) with 53 random bits


def struct_offsets(mask: Sequence | np.ndarray, dims: int) -> torch.Tensor:
    """Offsets (P x dims, int64) of the neighbours a structN2V mask marks."""
    array = parse_struct_mask(mask)
    if array.ndim > dims:
        raise ConfigError(f"struct_mask has {array.ndim} axes but the data only {dims}")
    array = array.reshape((1,) * (dims - array.ndim) + array.shape)
    centre: np.ndarray = np.array(array.shape) // 2
    return torch.from_numpy(np.argwhere(array == 1) - centre)


def window_offsets(radius: int, dims: int) -> torch.Tensor:
    """All offsets of the ``(2 radius + 1) ** dims`` window, row-major; the centre is the middle."""
    span = torch.arange(-radius, radius + 1)
    grids = torch.meshgrid(*([span] * dims), indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=-1)


def _window_offsets_on(device: torch.device, radius: int, dims: int) -> torch.Tensor:
    return constant_on(
        device, ("window offsets", radius, dims), lambda: window_offsets(radius, dims)
    )


def stratified_coordinates(
    rng: SampleRandom, spatial_shape: Sequence[int], side: int, groups: int
) -> torch.Tensor:
    """One uniformly drawn pixel per box of ``side``: N x groups x boxes x dims (int64).

    Boxes are numbered row-major; ``groups`` is 1 (channel-shared) or the channel count.
    """
    counts = [math.ceil(s / side) for s in spatial_shape]
    draws = rng.randint(_INT_RANGE, groups, *counts, len(counts))  # one draw for all axes
    coordinates = []
    for axis, (size, count) in enumerate(zip(spatial_shape, counts, strict=True)):
        starts = torch.arange(count, device=rng.device) * side
        lengths = (size - starts).clamp(max=side)  # boxes cut short at the far edge
        view = [1] * len(counts)
        view[axis] = count
        coordinates.append(starts.view(view) + draws[..., axis] % lengths.view(view))
    return torch.stack(coordinates, dim=-1).reshape(len(rng), groups, -1, len(counts))


def _inside(positions: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    inside = (positions >= 0).all(dim=-1)
    for axis, size in enumerate(spatial_shape):  # Python sizes: no tensor copied to the device
        inside &= positions[..., axis] < size
    return inside


def offset_weights(manipulator: str, radius: int, dims: int) -> torch.Tensor:
    """Unnormalised probability (float64) of each window offset for a sampling manipulator."""
    offsets = window_offsets(radius, dims).double()
    if manipulator == "uniform_withCP":
        return torch.ones(len(offsets), dtype=torch.float64)
    if manipulator == "uniform_withoutCP":
        weights = torch.ones(len(offsets), dtype=torch.float64)
    elif manipulator == "normal_withoutCP":
        sigma = radius / 2
        weights = torch.exp(-(offsets**2).sum(-1) / (2 * sigma**2))
    else:
        raise ConfigError(f"{manipulator!r} does not sample a neighbour")
    weights[len(offsets) // 2] = 0.0  # the centre
    return weights


def draw_neighbour_offsets(
    rng: SampleRandom,
    centres: torch.Tensor,
    spatial_shape: Sequence[int],
    manipulator: str,
    radius: int,
) -> torch.Tensor:
    """The replacement offset of each blind spot (same shape as ``centres``: N x G x B x dims).

    One categorical draw per blind spot over the window offsets that stay inside the patch,
    with the manipulator's weights (exact; see the module docstring).
    """
    dims = centres.shape[-1]
    offsets = _window_offsets_on(centres.device, radius, dims)
    weights = constant_on(
        centres.device,
        ("offset weights", manipulator, radius, dims),
        lambda: offset_weights(manipulator, radius, dims),
    )
    allowed = _inside(centres.unsqueeze(-2) + offsets, spatial_shape)  # N x G x B x K
    cumulative = torch.cumsum(weights * allowed, dim=-1)
    unit = rng.randint(_UNIT_BITS, *centres.shape[1:-1], 1).double() / _UNIT_BITS
    choice = torch.searchsorted(cumulative, unit * cumulative[..., -1:], right=True)
    return offsets[choice.squeeze(-1)]


def _flat_index(positions: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Row-major index of ``positions`` (..., dims) in a flattened patch."""
    index = torch.zeros(positions.shape[:-1], dtype=torch.int64, device=positions.device)
    for axis, size in enumerate(spatial_shape):
        index = index * size + positions[..., axis]
    return index


def _per_channel(index: torch.Tensor, channels: int) -> torch.Tensor:
    """Expand an N x G x ... index to N x C x ... (G is 1 or C), flattened after the channel."""
    return index.expand(index.shape[0], channels, *index.shape[2:]).reshape(
        index.shape[0], channels, -1
    )


def replacement_values(
    flat: torch.Tensor,
    centres: torch.Tensor,
    spatial_shape: Sequence[int],
    manipulator: str,
    radius: int,
    rng: SampleRandom,
) -> torch.Tensor:
    """Values (N x C x B) that replace the blind spots; ``flat`` is the patch, N x C x pixels."""
    n, channels = flat.shape[:2]
    blind_spots = centres.shape[2]
    if manipulator in ("mean", "median"):
        offsets = _window_offsets_on(centres.device, radius, centres.shape[-1])
        positions = centres.unsqueeze(-2) + offsets  # N x G x B x K x dims
        allowed = _inside(positions, spatial_shape)
        allowed[..., len(offsets) // 2] = False  # the centre
        index = _flat_index(positions, spatial_shape).where(allowed, 0)
        values = torch.gather(flat, 2, _per_channel(index, channels))
        values = values.view(n, channels, blind_spots, len(offsets))
        allowed = allowed.expand(n, channels, *allowed.shape[2:])
        values = values.where(allowed, torch.nan)
        if manipulator == "mean":
            return values.nanmean(dim=-1)
        return values.nanmedian(dim=-1).values
    offsets = draw_neighbour_offsets(rng, centres, spatial_shape, manipulator, radius)
    index = _flat_index(centres + offsets, spatial_shape)
    return torch.gather(flat, 2, _per_channel(index, channels))


def _blank_struct_neighbours(
    out: torch.Tensor,
    flat: torch.Tensor,
    centres: torch.Tensor,
    spatial_shape: Sequence[int],
    neighbours: torch.Tensor,
    rng: SampleRandom,
) -> None:
    """Write uniform random values in each channel's [min, max] at the struct neighbours of every
    blind spot, in place on ``out`` (N x C x pixels)."""
    n, channels, pixels = flat.shape
    positions = centres.unsqueeze(-2) + neighbours  # N x G x B x P x dims
    inside = _inside(positions, spatial_shape)
    index = _flat_index(positions, spatial_shape).where(inside, pixels)  # outside: a spare slot
    index = _per_channel(index, channels)
    low = flat.amin(dim=2, keepdim=True)
    high = flat.amax(dim=2, keepdim=True)
    draws = rng.rand(channels, index.shape[-1]).to(flat.dtype)
    values = low + draws * (high - low)
    padded = torch.cat([out, out.new_zeros(n, channels, 1)], dim=2)
    padded.scatter_reduce_(2, index, values, reduce="amax", include_self=False)
    out.copy_(padded[..., :pixels])


@dataclass(frozen=True)
class BlindSpotMasker:
    """Noise2Void masking with the paper's defaults (0.198 % of pixels, uniform_withCP, radius 2).

    Call it on an N x C x H x W or N x C x D x H x W batch with the batch's :class:`SampleRandom`;
    it returns ``(manipulated, mask)``, ``mask`` a bool tensor of the batch's shape, True at the
    blind spots (for ``channels="shared"`` the same in every channel).
    """

    masked_fraction: float = 0.00198
    manipulator: Manipulator = "uniform_withCP"
    radius: int = 2
    struct_mask: Sequence | None = None
    channels: ChannelMode = "shared"

    def __post_init__(self) -> None:
        if self.manipulator not in MANIPULATORS:
            raise ConfigError(
                f"unknown manipulator {self.manipulator!r}; use one of {', '.join(MANIPULATORS)}"
            )
        if self.radius < 1:
            raise ConfigError(f"radius must be at least 1, got {self.radius}")
        if self.channels not in ("shared", "independent"):
            raise ConfigError(f"channels must be 'shared' or 'independent', got {self.channels!r}")
        if self.struct_mask is not None:
            parse_struct_mask(self.struct_mask)

    def __call__(self, image: torch.Tensor, rng: SampleRandom) -> tuple[torch.Tensor, torch.Tensor]:
        if image.dim() not in (4, 5):
            raise ValueError(
                f"blind-spot masking needs N x C x H x W or N x C x D x H x W, got {image.shape}"
            )
        if len(rng) != len(image):
            raise ValueError(f"{len(rng)} random streams for a batch of {len(image)}")
        n, channels, *spatial = image.shape
        dims = len(spatial)
        groups = channels if self.channels == "independent" else 1
        centres = stratified_coordinates(rng, spatial, box_side(self.masked_fraction, dims), groups)
        flat = image.reshape(n, channels, -1)
        values = replacement_values(flat, centres, spatial, self.manipulator, self.radius, rng)
        out = flat.clone()
        if self.struct_mask is not None:
            struct = parse_struct_mask(self.struct_mask)
            neighbours = constant_on(
                image.device,
                ("struct offsets", struct.shape, struct.tobytes(), dims),
                lambda: struct_offsets(struct, dims),
            )
            _blank_struct_neighbours(out, flat, centres, spatial, neighbours, rng)
        index = _per_channel(_flat_index(centres, spatial), channels)
        out.scatter_(2, index, values.to(out.dtype))
        mask = torch.zeros_like(flat, dtype=torch.bool).scatter_(2, index, True)
        return out.view_as(image), mask.view_as(image)
