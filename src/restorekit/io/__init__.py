"""Image file input/output: see :mod:`restorekit.io.images` for the conventions."""

from restorekit.io.files import atomic_write
from restorekit.io.images import (
    IMAGE_EXTENSIONS,
    Image,
    array_to_float,
    convert_depth,
    float_to_array,
    list_images,
    read_image,
    to_uint8,
    write_image,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "Image",
    "array_to_float",
    "convert_depth",
    "atomic_write",
    "float_to_array",
    "list_images",
    "read_image",
    "to_uint8",
    "write_image",
]
