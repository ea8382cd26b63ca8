"""Random neighbour sub-sampling of Neighbor2Neighbor (Huang et al. 2021), vectorised.

Each 2x2 cell of an image gives one pixel to each of two sub-images; the two pixels are
horizontal or vertical neighbours, one of the 8 ordered neighbour pairs drawn uniformly per cell.
The draw is shared by all channels of a pixel. Sub-images are half the size in each dimension.
"""

from __future__ import annotations

import torch

from restorekit.devices import constant_on
from restorekit.randomness import SampleRandom

# Cell positions are numbered 2 * row + column:
# 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right.
NEIGHBOUR_PAIRS = torch.tensor(
    [[0, 1], [0, 2], [1, 3], [2, 3], [1, 0], [2, 0], [3, 1], [3, 2]], dtype=torch.int64
)


def draw_neighbour_pairs(
    rng: SampleRandom, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell positions (0..3) for the two sub-images, each ``N x 1 x height/2 x width/2``."""
    choice = rng.randint(len(NEIGHBOUR_PAIRS), 1, height // 2, width // 2)
    pairs = constant_on(choice.device, "neighbour pairs", lambda: NEIGHBOUR_PAIRS)[choice]
    return pairs[..., 0], pairs[..., 1]


def subsample(image: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Pick one pixel per 2x2 cell: ``image`` N x C x H x W, ``positions`` N x 1 x H/2 x W/2."""
    n, c, h, w = image.shape
    if h % 2 or w % 2:
        raise ValueError(f"neighbour sub-sampling needs even height and width, got {h}x{w}")
    cells = image.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5)
    cells = cells.reshape(n, c, h // 2, w // 2, 4)
    index = positions.unsqueeze(-1).expand(n, c, h // 2, w // 2, 1)
    return torch.gather(cells, -1, index).squeeze(-1)
