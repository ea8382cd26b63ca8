"""Image-quality metrics (PSNR, SSIM) on numpy images, with the super-resolution conventions
(border crop, BT.601 Y channel)."""

from restorekit.metrics.color import rgb_to_y
from restorekit.metrics.psnr import psnr
from restorekit.metrics.ssim import ssim

__all__ = ["psnr", "rgb_to_y", "ssim"]
