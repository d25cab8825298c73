"""The latest image of an output node as host pixels, converted only when the image changes.

Output nodes also cook without a new image (a recorder writes every frame, NDI re-sends a still
picture, a parameter changes); keeping the converted frame makes those cooks cost no conversion.
Each node owns one: a ``HostFrame`` stays valid until its converter runs twice more, which only
this object does.
"""

from __future__ import annotations

import torch

from autolume_graph.outputs.frames import FrameConverter, HostFrame


class LatestFrame:
    """The host frame of the last image seen; a missing image keeps the last one (never blank)."""

    def __init__(self) -> None:
        self._converter = FrameConverter()
        self._image: torch.Tensor | None = None
        self.frame: HostFrame | None = None

    def update(self, image: torch.Tensor | None) -> bool:
        """Convert `image` if it is a new one; returns whether `frame` changed."""
        if image is None or image is self._image:
            return False
        self.frame = self._converter.convert(image)
        self._image = image
        return True
