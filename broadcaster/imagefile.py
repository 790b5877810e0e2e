"""Reading a scene image (background, layer, portrait) completely, once, with a size cap.

A PNG can have valid checksums and still fail to decode, and a small file can declare
20000x20000 pixels; both must be one clear error when the scene is loaded (and by `check`),
not a traceback when the first frame is drawn.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

MAX_IMAGE_PIXELS = 8192 * 8192
_TOO_LARGE = f"is too large (at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels)"


class ImageFileError(ValueError):
    """An image that cannot be used; the message says why, without a traceback."""


def read_image_rgba(path: Path) -> Image.Image:
    """The whole image decoded to RGBA; ImageFileError when it is not one, too large or
    damaged."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageFileError(f"{width}x{height} {_TOO_LARGE}")
                return img.convert("RGBA")
    except ImageFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageFileError(f"the image {_TOO_LARGE}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        # PIL reports unknown formats, truncated data and corrupt pixel streams this way
        raise ImageFileError(f"not a readable image ({exc.__class__.__name__}: {exc})") from None
