"""The output image and the performance readout (fps, frame time, cook times, device, OSC, NDI).

The image sits in a box of fixed size, letterboxed, so the panel does not jump when a model of
another shape loads. The device switch moves the running graph (no restart).
"""

from __future__ import annotations

from typing import Any

import dearpygui.dearpygui as dpg
import numpy as np
import torch
import torch.nn.functional as F

from autolume_graph.devices import DEVICES
from autolume_graph.roles import Role
from autolume_graph.runtime import Snapshot
from autolume_graph.session import Session
from autolume_graph.ui.pending import Pending
from autolume_graph.ui.view import GraphView

MAX_SIDE = 512
SHOW_WIDTH = 440
SHOW_HEIGHT = 330  # the image box: 4:3, so square and 16:9 pictures both stay large
STATS_EVERY = 10  # UI frames between readout updates: text churn costs more than it tells


def image_to_rgba(image: Any, max_side: int = MAX_SIDE) -> np.ndarray:
    """A published [1, 3, H, W] tensor in [-1, 1] as float32 RGBA [h, w, 4], at most `max_side` pixels."""
    with torch.inference_mode():
        x = image.detach()[:1, :3].float()
        side = max(x.shape[-2:])
        if side > max_side:
            scale = max_side / side
            size = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale)))
            x = F.interpolate(x, size=size, mode="area")
        x = x[0].add(1).mul(0.5).clamp(0, 1).permute(1, 2, 0).cpu()
        if x.shape[-1] == 1:
            x = x.expand(-1, -1, 3)
        rgba = torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
    return np.ascontiguousarray(rgba.numpy(), dtype=np.float32)


class OutputPanel:
    """Shows one published preview and the show's numbers; build it inside its container."""

    def __init__(self, session: Session, pending: Pending) -> None:
        self.session = session
        self.pending = pending
        self._buffer = np.zeros((1, 1, 4), np.float32)
        self._texture: int | str | None = None
        self._shown: Any = None
        self._frames = 0
        self.registry = dpg.add_texture_registry()
        self.preview = dpg.add_combo([], label="preview", width=200)
        self.image_group = dpg.add_child_window(width=SHOW_WIDTH, height=SHOW_HEIGHT, no_scrollbar=True,
                                                border=False)
        self.placeholder = dpg.add_text("no image yet: wire an image into a Preview node", parent=self.image_group)
        self.image: int | str | None = None
        self.fps = dpg.add_text("")
        self._device = session.runtime.device.split(":")[0]  # the device the graph runs on, as last confirmed
        self.device = dpg.add_combo(DEVICES, default_value=self._device, label="device",
                                    width=90, callback=lambda s, a, *_: self.move_to(a))
        self.osc = dpg.add_text("")
        with dpg.group(horizontal=True):
            self.osc_host = dpg.add_input_text(default_value=session.osc_host, width=120, hint="host")
            self.osc_port = dpg.add_input_int(default_value=session.osc_port, width=90, step=0)
            dpg.add_button(label="Listen", callback=self._listen)
        self.osc_allow = dpg.add_input_text(default_value=session.osc_allow, width=220,
                                            hint="allow: e.g. 192.168.1.0/24 (empty: anyone)")
        self.osc_allow_error = dpg.add_text("", color=(255, 90, 90, 255))
        self.ndi = dpg.add_text("")
        dpg.add_text("cook times")
        with dpg.table(header_row=True, height=180, scrollY=True, policy=dpg.mvTable_SizingStretchProp) as self.table:
            for label in ("node", "type", "ms"):
                dpg.add_table_column(label=label)

    def update(self, snapshot: Snapshot, view: GraphView) -> None:
        """Each UI frame: a new image when one was published; the numbers every few frames."""
        names = sorted(snapshot.published)
        if names and dpg.get_item_configuration(self.preview)["items"] != names:
            dpg.configure_item(self.preview, items=names)
        chosen = dpg.get_value(self.preview)
        if names and chosen not in names:
            dpg.set_value(self.preview, chosen := names[0])
        image = snapshot.published.get(chosen)
        if image is not None and image is not self._shown and torch.is_tensor(image) and image.dim() == 4:
            self._shown = image
            self._show(image_to_rgba(image))
        self._frames += 1
        if self._frames % STATS_EVERY == 1:
            self._numbers(snapshot, view)

    def _show(self, rgba: np.ndarray) -> None:
        h, w = rgba.shape[:2]
        if self._texture is None or self._buffer.shape != rgba.shape:
            old = (self._texture, self.image)
            self._buffer = rgba
            self._texture = dpg.add_raw_texture(w, h, self._buffer, format=dpg.mvFormat_Float_rgba,
                                                parent=self.registry)
            scale = min(SHOW_WIDTH / w, SHOW_HEIGHT / h)
            width, height = int(w * scale), int(h * scale)
            self.image = dpg.add_image(self._texture, width=width, height=height, parent=self.image_group,
                                       pos=((SHOW_WIDTH - width) // 2, (SHOW_HEIGHT - height) // 2))
            dpg.hide_item(self.placeholder)
            for item in old:
                if item is not None:
                    dpg.delete_item(item)
        else:
            self._buffer[...] = rgba
            dpg.set_value(self._texture, self._buffer)

    def move_to(self, device: str) -> None:
        """The device switch: the running graph moves between frames; a device that is not here is refused."""
        def moved(now: str) -> None:
            self._device = now.split(":")[0]
            self.pending.inform(f"running on {now}")

        def refused(exc: BaseException) -> None:
            dpg.set_value(self.device, self._device)
            self.pending.report(str(exc))

        self.pending.submit(lambda rt: rt.set_device(device), on_result=moved, on_error=refused)

    def _listen(self) -> None:
        """Move OSC to the host/port entered (0.0.0.0: all interfaces, for a controller on another machine),
        admitting only the senders in the allow field; a bad allow-list is shown and nothing moves."""
        try:
            self.session.listen(dpg.get_value(self.osc_host).strip() or "127.0.0.1", int(dpg.get_value(self.osc_port)),
                                allow=dpg.get_value(self.osc_allow).strip())
        except ValueError as exc:
            dpg.set_value(self.osc_allow_error, str(exc))
        else:
            dpg.set_value(self.osc_allow_error, "")

    def _numbers(self, snapshot: Snapshot, view: GraphView) -> None:
        dpg.set_value(self.fps, f"render: {snapshot.fps:5.1f} fps   frame {snapshot.frame_ms:6.1f} ms   "
                                f"#{snapshot.frame}")
        address = self.session.osc_address
        server = self.session.osc_server
        refused = server.refused if server is not None else 0
        dpg.set_value(self.osc, f"OSC: {address}{f'  ({refused} refused senders)' if refused else ''}" if address else
                      f"OSC: off{' (' + self.session.errors['osc'] + ')' if 'osc' in self.session.errors else ''}")
        senders = [str(n.current_values(snapshot.nodes.get(n.id)).get("sender_name", ""))
                   for n in view.with_role(Role.FRAME_SENDER)]
        dpg.set_value(self.ndi, f"NDI: {', '.join(s for s in senders if s) or 'none'}")
        dpg.delete_item(self.table, children_only=True, slot=1)
        for stat in sorted(snapshot.nodes.values(), key=lambda s: -s.cook_ms):
            with dpg.table_row(parent=self.table):
                dpg.add_text(stat.name, color=(255, 90, 90, 255) if stat.error else (255, 255, 255, 255))
                dpg.add_text(stat.type_name)
                dpg.add_text(f"{stat.cook_ms:.2f}")
