"""A running show: the runtime plus the services around it (OSC in, MIDI bindings, OSCQuery, presets, error log)."""

from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from autolume_graph import workspace
from autolume_graph.graph import Graph
from autolume_graph.midi.control import MIDIControl
from autolume_graph.morph import Morph, MorphError, morph_seconds
from autolume_graph.osc.allow import parse_allow
from autolume_graph.osc.bindings import OSCControl
from autolume_graph.osc.mailbox import Mailbox
from autolume_graph.osc.oscquery import OSCQueryServer, ParamInfo, image_size_info
from autolume_graph.osc.server import OSCServer
from autolume_graph.outputs.errors import one_line
from autolume_graph.presets import PresetFolder
from autolume_graph.roles import Role
from autolume_graph.runtime import Runtime

log = logging.getLogger(__name__)

DEFAULT_OSC_HOST = "127.0.0.1"
DEFAULT_OSC_PORT = 1338
SWITCH_WAIT_S = 60.0  # a preset's swap waits for the render thread's next frame boundary


def picture_size(snapshot: Any) -> tuple[int, int] | None:
    """(height, width) of the first published picture ([.., H, W]), None before there is one."""
    return next(((int(image.shape[-2]), int(image.shape[-1])) for image in snapshot.published.values()
                 if getattr(image, "ndim", 0) >= 3), None)


class Session:
    """Owns the runtime and its services; the CLI and the editor both drive a show through this."""

    def __init__(self, runtime: Runtime, osc_host: str | None = None, osc_port: int | None = None,
                 oscquery_port: int | None = None, ndi_name: str | None = None, osc: bool = True,
                 preset_dir: str | Path | None = None, osc_allow: str | None = None) -> None:
        self.runtime = runtime
        settings = runtime.graph.settings
        parse_allow(osc_allow)  # "CIDR[,CIDR]" given by the user: a bad one is their mistake, raised now
        self.osc_allow = osc_allow if osc_allow is not None else settings.get("osc_allow", "")
        self.osc_enabled = osc
        self.osc_host = osc_host or settings.get("osc_host", DEFAULT_OSC_HOST)
        self.osc_port = osc_port if osc_port is not None else int(settings.get("osc_port", DEFAULT_OSC_PORT))
        self.oscquery_port = oscquery_port
        self.ndi_name = ndi_name
        # the user's folder (CLI, editor) or the workspace's: a graph file never chooses where presets are written
        self.presets = PresetFolder(preset_dir or workspace.folder("presets"))
        self.mailbox = Mailbox()
        self.control = OSCControl(self.mailbox)
        self.control.system.update({
            "/autolume/preset": self._osc_preset,
            "/autolume/fps": self._osc_fps,
            # the recorder's own parameter declaration checks the value (a number or a bool; none: on)
            "/autolume/record": lambda args: self._set_all(Role.RECORDER, "record", args[0] if args else True),
            "/autolume/snapshot": lambda args: self._set_all(Role.RECORDER, "snapshot", True),
        })
        self.runtime.frame_hooks.append(self.control)
        self.midi = MIDIControl()  # opens no port until a parameter is bound to MIDI (or the editor listens)
        self.runtime.frame_hooks.append(self.midi)
        self.osc_server: OSCServer | None = None
        self.oscquery: OSCQueryServer | None = None
        self.errors: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        if ndi_name:
            self._set_all(Role.FRAME_SENDER, "sender_name", ndi_name)

    @property
    def osc_address(self) -> str:
        if self.osc_server is None:
            return ""
        host, port = self.osc_server.address
        return f"{host}:{port}"

    def _set_all(self, role: str, param: str, value: Any) -> None:
        """Set `param` on every node whose class declares `role`."""
        for node in self.runtime.graph.nodes.values():
            if role in node.roles and param in node.params:
                node.set_value(param, value)

    def start_services(self) -> None:
        """Start OSC and OSCQuery; one that cannot start (port taken) is reported, the show runs on."""
        if not self.osc_enabled:
            return
        try:  # a bad allow-list from a graph file: OSC stays off rather than open to everyone
            self.osc_server = OSCServer(self.mailbox, self.osc_host, self.osc_port, allow=self.osc_allow)
            self.osc_server.start()
        except (OSError, ValueError) as exc:
            self.osc_server = None
            self.errors["osc"] = f"OSC server on {self.osc_host}:{self.osc_port} did not start: {exc}"
            print(self.errors["osc"], file=sys.stderr)
            return
        port = self.osc_server.address[1]
        try:
            # advertised over zeroconf only when listening beyond this machine (and zeroconf is installed)
            self.oscquery = OSCQueryServer(self._published_entries, port,
                                           host=self.osc_host, port=self.oscquery_port,
                                           advertise=self.osc_host not in ("127.0.0.1", "localhost", "::1"))
            self.oscquery.start()
        except OSError as exc:
            self.oscquery = None
            self.errors["oscquery"] = f"OSCQuery did not start: {exc}"
            print(self.errors["oscquery"], file=sys.stderr)

    def listen(self, host: str, port: int, allow: str | None = None) -> None:
        """Move the OSC server (and OSCQuery) to `host:port`, admitting `allow` (None: as before), and keep
        both in the graph's settings; a bad allow-list raises ValueError and changes nothing."""
        parse_allow(allow)
        allow = self.osc_allow if allow is None else allow
        self.stop_services()
        self.osc_host, self.osc_port, self.osc_allow = host, port, allow
        self.errors.pop("osc", None)
        self.errors.pop("oscquery", None)
        self.start_services()

        def keep(runtime: Runtime) -> None:
            runtime.graph.settings.update(osc_host=host, osc_port=port, osc_allow=allow)

        self.runtime.call(keep)

    def stop_services(self) -> None:
        for service in (self.oscquery, self.osc_server):
            if service is not None:
                service.stop()
        self.oscquery = self.osc_server = None

    # --- presets -----------------------------------------------------------------
    def _published_entries(self) -> list[ParamInfo]:
        """What OSCQuery lists: the bound parameters, and the picture's size once a preview has one."""
        entries = list(self.control.describe(self.runtime.graph))
        size = picture_size(self.runtime.snapshot)
        return entries + image_size_info(*size) if size else entries

    def _prepare(self, graph: Graph) -> None:
        """Off the render thread, before a graph goes live: its nodes wait for their slow resources (models)."""
        for node in graph.nodes.values():
            node.prepare(self.runtime.device)

    def switch_to(self, graph: Graph) -> Future:
        """Prepare a loaded graph off the render thread (models preload), then swap it in between frames.

        The Future is done once the graph runs (or was refused: its exception)."""
        self._prepare(graph)
        swapped = self.runtime.submit(lambda rt: rt.swap_graph(graph))
        swapped.add_done_callback(self._switched)
        return swapped

    def morph_to(self, graph: Graph, seconds: float) -> Future:
        """Crossfade the running graph into a loaded one over `seconds` (autolume_graph/morph.py); 0 switches
        at once. Models preload and model crossfades build here, off the render thread.

        The Future is done once the graph runs (its exception if refused; "replaced" when a newer morph or
        switch took over first). A bad time raises MorphError before anything changes."""
        if seconds == 0:
            return self.switch_to(graph)
        morph = Morph(graph, seconds)
        self._prepare(graph)
        morph.prepare(*self.runtime.call(Morph.capture, timeout=SWITCH_WAIT_S))
        began = self.runtime.submit(morph.begin)

        def refused(done: Future) -> None:
            if done.exception() is not None and not morph.done.done():
                morph.done.set_exception(done.exception())

        began.add_done_callback(refused)
        morph.done.add_done_callback(self._switched)
        return morph.done

    def _switched(self, done: Future) -> None:
        """A refused switch (a graph that cannot be cooked) is shown; the running graph stays."""
        if done.exception() is not None:
            self.errors["preset"] = one_line(done.exception())

    def switch_preset(self, name: str, wait: bool = False, seconds: float = 0.0) -> threading.Thread:
        """Load a preset in a worker and switch to it, or morph into it over `seconds`; a bad preset is
        reported and the show goes on.

        The worker ends once the preset runs (or failed, in `errors["preset"]`), so whoever holds the
        thread can confirm it."""
        def work() -> None:
            try:
                self.morph_to(self.presets.load(name), seconds).result(timeout=SWITCH_WAIT_S + seconds)
                self.errors.pop("preset", None)
            except Exception as exc:  # noqa: BLE001 - any failure is reported, the current graph stays
                self.errors["preset"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("preset %s: %s", name, self.errors["preset"])

        thread = threading.Thread(target=work, name=f"preset-{name}", daemon=True)
        thread.start()
        if wait:
            thread.join()
        return thread

    def _osc_preset(self, args: tuple) -> None:
        """`/autolume/preset NAME [TIME [seconds|beats]]` (render thread): a bad argument is one line in
        `errors["preset"]` (and the OSC log), the show goes on."""
        try:
            if not args or not isinstance(args[0], str):
                raise MorphError("/autolume/preset takes the preset name as a string")
            seconds = morph_seconds(args[1:], self.runtime.graph)
        except MorphError as exc:
            self.errors["preset"] = str(exc)
            raise
        self.switch_preset(args[0], seconds=seconds)

    def _osc_fps(self, args: tuple) -> None:
        """Any value is checked by the runtime (0: unlimited, else clipped into 1..1000; others refused)."""
        if not args:
            raise ValueError("/autolume/fps takes the frame rate as a number")
        self.runtime.target_fps = args[0]

    # --- reporting and shutdown ----------------------------------------------------
    def report_errors(self, stream: Any = sys.stderr) -> None:
        """Print each node error and each engine error once when it appears (and once more if it changes)."""
        snapshot = self.runtime.snapshot
        current = {node_id: (stat.name, stat.error) for node_id, stat in snapshot.nodes.items()}
        current.update({f"engine:{source}": (source, error) for source, error in snapshot.engine_errors.items()})
        for key, (label, error) in current.items():
            if error and self._reported.get(key) != error:
                print(f"\n{label}: {error}", file=stream)
        self._reported = {key: error for key, (_, error) in current.items()}

    def close(self) -> None:
        self.stop_services()
        self.runtime.close()
        self.midi.close()
