"""A running show: the runtime plus the services around it (OSC in, OSCQuery, NDI naming, error log)."""

from __future__ import annotations

import sys
from typing import Any

from autolume_graph.runtime import Runtime

DEFAULT_OSC_HOST = "127.0.0.1"
DEFAULT_OSC_PORT = 1338


class Session:
    """Owns the runtime and its services; the CLI and the editor both drive a show through this."""

    def __init__(self, runtime: Runtime, osc_host: str | None = None, osc_port: int | None = None,
                 oscquery_port: int | None = None, ndi_name: str | None = None, osc: bool = True) -> None:
        self.runtime = runtime
        settings = runtime.graph.settings
        self.osc_enabled = osc
        self.osc_host = osc_host or settings.get("osc_host", DEFAULT_OSC_HOST)
        self.osc_port = osc_port if osc_port is not None else int(settings.get("osc_port", DEFAULT_OSC_PORT))
        self.oscquery_port = oscquery_port
        self.ndi_name = ndi_name
        self.osc_address: str = ""
        self._services: list[Any] = []
        self._reported: dict[str, str] = {}
        if ndi_name:
            self.apply_ndi_name(ndi_name)

    def apply_ndi_name(self, name: str) -> None:
        for node in self.runtime.graph.nodes.values():
            if node.type_name == "NDIOut":
                node.set_value("sender_name", name)

    def start_services(self) -> None:
        """Start what this installation supports; a service that cannot start is reported, not fatal."""

    def report_errors(self, stream: Any = sys.stderr) -> None:
        """Print each node error once when it appears (and once more if it changes)."""
        for node_id, stat in self.runtime.snapshot.nodes.items():
            if stat.error and self._reported.get(node_id) != stat.error:
                print(f"\n{stat.name}: {stat.error}", file=stream)
            self._reported[node_id] = stat.error

    def close(self) -> None:
        for service in reversed(self._services):
            service.stop()
        self._services.clear()
        self.runtime.close()
