"""The editor's view of an image, and the image `autolume-graph run --out` writes."""

from __future__ import annotations

from typing import Any

from autolume_graph.node import CookContext, Node
from autolume_graph.params import Input
from autolume_graph.roles import Role
from autolume_graph.types import PortType


class Preview(Node):
    """Shows an image in the editor and is the image `run --out` writes; a sink that pulls its input."""

    category = "output"
    roles = frozenset({Role.SINK, Role.PREVIEW})
    inputs = {"image": Input(PortType.IMAGE, "image to show")}

    def cook(self, ctx: CookContext, inputs: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        image = inputs.get("image")
        if image is not None:
            ctx.services["publish"][self.name] = image
        return {}
