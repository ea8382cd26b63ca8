"""Image and stack file input/output: see :mod:`restorekit.io.images` and :mod:`.stacks`."""

from restorekit.io.axes import parse_axes, to_canonical
from restorekit.io.files import atomic_write, sha256_file
from restorekit.io.images import (
    IMAGE_EXTENSIONS,
    Image,
    array_to_float,
    convert_depth,
    float_to_array,
    list_images,
    max_pixels,
    read_image,
    set_max_pixels,
    to_uint8,
    write_image,
)
from restorekit.io.stacks import read_stack, read_tiff, write_stack

__all__ = [
    "IMAGE_EXTENSIONS",
    "Image",
    "array_to_float",
    "convert_depth",
    "atomic_write",
    "float_to_array",
    "list_images",
    "max_pixels",
    "parse_axes",
    "read_image",
    "read_stack",
    "read_tiff",
    "set_max_pixels",
    "to_canonical",
    "to_uint8",
    "write_image",
    "sha256_file",
    "write_stack",
]
