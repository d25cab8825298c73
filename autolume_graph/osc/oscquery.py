"""OSCQuery: publish the OSC address space (types, ranges, current values) over HTTP.

With it, a controller such as TouchOSC, Chataigne or Vezér lists every parameter with its range
instead of the user typing addresses by hand. The tree is rebuilt from a provider callable on
each request, so values are current; the provider runs on the HTTP thread and must only read a
snapshot. Zeroconf (`_oscjson._tcp`) advertisement is opt-in and optional: mDNS is not
started unless asked and the `zeroconf` package imports.
"""

from __future__ import annotations

import json
import logging
import math
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from autolume_graph.osc.serving import BackgroundServer

log = logging.getLogger(__name__)

ACCESS_READ = 1
ACCESS_READ_WRITE = 3
IMAGE_ADDRESS = "/autolume/image"  # read-only: the picture's width and height
# ParamInfo.type -> OSC type tag as OSCQuery's TYPE; a parameter type (params.ParamKind.osc_type) names one
TYPE_TAGS = {"float": "f", "int": "i", "bool": "T", "str": "s", "trigger": "N"}
EXTENSIONS = {
    "ACCESS": True,
    "VALUE": True,
    "RANGE": True,
    "DESCRIPTION": True,
    "TYPE": True,
    "FULL_PATH": True,
    "CONTENTS": True,
    "TAGS": False,
    "CLIPMODE": False,
    "UNIT": False,
    "CRITICAL": False,
    "LISTEN": False,
    "PATH_CHANGED": False,
}


@dataclass(frozen=True)
class ParamInfo:
    """One OSC-controllable parameter as published; `type` is a key of TYPE_TAGS. `read_only`: a value
    to read (ACCESS 1), such as the picture's size, not a control."""

    address: str
    type: str
    min: float | None = None
    max: float | None = None
    value: Any = None
    description: str = ""
    choices: Sequence[Any] | None = None
    read_only: bool = False


def image_size_info(height: int, width: int) -> list[ParamInfo]:
    """The picture's size as read-only entries under IMAGE_ADDRESS, so a controller or a mapping tool can
    lay out its canvas at the model's width x height (non-square models are not 1:1)."""
    return [ParamInfo(f"{IMAGE_ADDRESS}/width", "int", value=int(width), description="picture width (px)",
                      read_only=True),
            ParamInfo(f"{IMAGE_ADDRESS}/height", "int", value=int(height), description="picture height (px)",
                      read_only=True)]


Provider = Callable[[], Sequence[ParamInfo]]


def _coerce(kind: str, v: Any) -> Any:
    """A JSON-safe value of the parameter's kind, or None when it has none."""
    if v is None:
        return None
    try:
        if kind == "float":
            f = float(v)
            return f if math.isfinite(f) else None
        if kind == "int":
            return int(v)
        if kind == "bool":
            return bool(v)
        return str(v)
    except (TypeError, ValueError, OverflowError):
        return None


def param_node(p: ParamInfo) -> dict[str, Any]:
    """The OSCQuery attributes of one parameter."""
    if p.type not in TYPE_TAGS:
        raise ValueError(f"{p.address}: unknown parameter type {p.type!r} (one of {', '.join(TYPE_TAGS)})")
    node: dict[str, Any] = {
        "FULL_PATH": p.address,
        "TYPE": TYPE_TAGS[p.type],
        "ACCESS": ACCESS_READ if p.read_only else ACCESS_READ_WRITE,
        "DESCRIPTION": p.description,
    }
    if p.type == "trigger":
        return node
    node["VALUE"] = [_coerce(p.type, p.value)]
    if p.choices is not None:
        node["RANGE"] = [{"VALS": [_coerce(p.type, c) for c in p.choices]}]
    elif p.type in ("float", "int") and (p.min is not None or p.max is not None):
        bounds = {"MIN": _coerce(p.type, p.min), "MAX": _coerce(p.type, p.max)}
        node["RANGE"] = [{k: v for k, v in bounds.items() if v is not None}]
    return node


def build_tree(params: Sequence[ParamInfo]) -> dict[str, Any]:
    """The OSCQuery namespace: containers with CONTENTS down to parameter nodes."""
    root: dict[str, Any] = {"FULL_PATH": "/", "ACCESS": 0, "CONTENTS": {}}
    for p in params:
        parts = [s for s in p.address.split("/") if s]
        if not parts:
            raise ValueError(f"parameter address {p.address!r} has no path")
        node = root
        for i, part in enumerate(parts):
            contents = node.setdefault("CONTENTS", {})
            node = contents.setdefault(part, {"FULL_PATH": "/" + "/".join(parts[: i + 1]), "ACCESS": 0})
        node.update(param_node(p))
    return root


def find_node(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The subtree at `path` ("/a/b"), or None."""
    node = tree
    for part in (s for s in path.split("/") if s):
        node = node.get("CONTENTS", {}).get(part)
        if node is None:
            return None
    return node


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: OSCQueryServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        app = self.server.app
        url = urlsplit(self.path)
        query = url.query.upper()
        if query == "HOST_INFO":
            self._reply(HTTPStatus.OK, app.host_info())
            return
        try:
            tree = build_tree(app.provider())
        except Exception as exc:  # the provider is engine code: report it, keep serving
            log.warning("oscquery: provider failed: %s: %s", type(exc).__name__, exc)
            self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
            return
        node = find_node(tree, unquote(url.path))
        if node is None:
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path}"})
        elif not query:
            self._reply(HTTPStatus.OK, node)
        elif query in node:
            self._reply(HTTPStatus.OK, {query: node[query]})
        else:
            self._reply(HTTPStatus.NO_CONTENT, None)

    def _reply(self, status: HTTPStatus, body: Any) -> None:
        data = b"" if body is None else json.dumps(body, allow_nan=False).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("oscquery: " + format, *args)


class OSCQueryServer(BackgroundServer):
    """Serves the OSCQuery tree of `provider()` on `host:port` (default: OSC port + 1).

    Port 0 picks a free port (tests); read it from `address` after `start()`.
    """

    thread_name = "oscquery"

    def __init__(
        self,
        provider: Provider,
        osc_port: int,
        host: str = "127.0.0.1",
        port: int | None = None,
        name: str = "autolume-graph",
        osc_ip: str | None = None,
        advertise: bool = False,
    ) -> None:
        super().__init__()
        self.provider = provider
        self.osc_port = osc_port
        self.name = name
        self.osc_ip = osc_ip
        self._host = host
        self._port = osc_port + 1 if port is None else port
        self._advertise = advertise
        self._zeroconf: tuple[Any, Any] | None = None

    def host_info(self) -> dict[str, Any]:
        """The ?HOST_INFO answer: where and how to send OSC."""
        info: dict[str, Any] = {
            "NAME": self.name,
            "OSC_PORT": self.osc_port,
            "OSC_TRANSPORT": "UDP",
            "EXTENSIONS": EXTENSIONS,
        }
        if self.osc_ip:
            info["OSC_IP"] = self.osc_ip
        return info

    def _bind(self) -> _HTTPServer:
        server = _HTTPServer((self._host, self._port), _Handler)
        server.app = self
        return server

    def start(self) -> None:
        """Bind (raising OSError if the port is taken), serve on a daemon thread, advertise if asked."""
        super().start()
        if self._advertise and self._zeroconf is None:
            self._zeroconf = _advertise(self.name, self._host, self.address[1])

    def stop(self) -> None:
        """Withdraw the advertisement, stop serving, free the port."""
        if self._zeroconf is not None:
            _withdraw(*self._zeroconf)
            self._zeroconf = None
        super().stop()


def _lan_ip() -> str:
    """The address other machines reach us at (no packet is sent), else loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def _advertise(name: str, host: str, port: int) -> tuple[Any, Any] | None:
    """Register `_oscjson._tcp` via python-zeroconf; one log line and None on any failure."""
    try:
        from zeroconf import ServiceInfo, Zeroconf
    except ImportError:
        log.warning("oscquery: zeroconf is not installed; not advertising _oscjson._tcp")
        return None
    try:
        ip = _lan_ip() if host in ("", "0.0.0.0", "::") else host
        info = ServiceInfo(
            "_oscjson._tcp.local.",
            f"{name}._oscjson._tcp.local.",
            addresses=[socket.inet_aton(ip)],
            port=port,
            server=f"{socket.gethostname()}.local.",
        )
        zc = Zeroconf()
        zc.register_service(info)
    except Exception as exc:  # discovery is a convenience; it must never stop the show
        log.warning("oscquery: zeroconf advertisement failed: %s: %s", type(exc).__name__, exc)
        return None
    return zc, info


def _withdraw(zc: Any, info: Any) -> None:
    try:
        zc.unregister_service(info)
    finally:
        zc.close()
