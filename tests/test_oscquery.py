"""OSCQuery over real HTTP on 127.0.0.1: the tree, a subtree, attributes, HOST_INFO, current values."""

from __future__ import annotations

import json
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from autolume_graph.osc.oscquery import OSCQueryServer, ParamInfo


class Params:
    """A stand-in for the engine's parameter snapshot; values change between requests."""

    def __init__(self) -> None:
        self.diversity = 0.8

    def __call__(self) -> list[ParamInfo]:
        return [
            ParamInfo("/gen/diversity", "float", 0.0, 2.0, self.diversity, "truncation psi"),
            ParamInfo("/gen/seed", "int", 0, 2**31 - 1, 42, "latent seed"),
            ParamInfo("/gen/noise", "bool", None, None, True, "noise on/off"),
            ParamInfo("/gen/mode", "str", None, None, "vector", "latent mode", choices=["seed", "vector"]),
            ParamInfo("/loop/reset", "trigger", None, None, None, "restart the loop"),
            ParamInfo("/autolume/preset", "str", None, None, "", "recall a preset by name"),
            ParamInfo("/bad/value", "float", None, 1.0, math.nan, "not a number right now"),
        ]


@pytest.fixture
def params() -> Params:
    return Params()


@pytest.fixture
def server(params: Params) -> Iterator[OSCQueryServer]:
    srv = OSCQueryServer(params, osc_port=1338, port=0, name="test-graph")
    srv.start()
    yield srv
    srv.stop()


def get(server: OSCQueryServer, path: str) -> tuple[int, Any]:
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
            body = r.read()
            return r.status, json.loads(body) if body else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_default_port_is_osc_port_plus_one(params: Params) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        free_osc_port = s.getsockname()[1]
    srv = OSCQueryServer(params, osc_port=free_osc_port - 1)
    try:
        srv.start()
    except OSError:
        pytest.skip("the port after a free one is taken on this machine")
    try:
        assert srv.address[1] == free_osc_port
    finally:
        srv.stop()


def test_root_tree(server: OSCQueryServer) -> None:
    status, tree = get(server, "/")
    assert status == 200
    assert tree["FULL_PATH"] == "/"
    assert set(tree["CONTENTS"]) == {"gen", "loop", "autolume", "bad"}
    gen = tree["CONTENTS"]["gen"]
    assert gen["FULL_PATH"] == "/gen"
    assert gen["CONTENTS"]["diversity"] == {
        "FULL_PATH": "/gen/diversity",
        "TYPE": "f",
        "ACCESS": 3,
        "DESCRIPTION": "truncation psi",
        "VALUE": [0.8],
        "RANGE": [{"MIN": 0.0, "MAX": 2.0}],
    }
    assert gen["CONTENTS"]["seed"]["TYPE"] == "i"
    assert gen["CONTENTS"]["seed"]["RANGE"] == [{"MIN": 0, "MAX": 2**31 - 1}]
    assert gen["CONTENTS"]["noise"]["TYPE"] == "T" and gen["CONTENTS"]["noise"]["VALUE"] == [True]
    assert gen["CONTENTS"]["mode"]["RANGE"] == [{"VALS": ["seed", "vector"]}]
    reset = tree["CONTENTS"]["loop"]["CONTENTS"]["reset"]
    assert reset["TYPE"] == "N" and "VALUE" not in reset
    bad = tree["CONTENTS"]["bad"]["CONTENTS"]["value"]
    assert bad["VALUE"] == [None] and bad["RANGE"] == [{"MAX": 1.0}]


def test_subtree_leaf_and_attribute(server: OSCQueryServer) -> None:
    status, gen = get(server, "/gen")
    assert status == 200 and set(gen["CONTENTS"]) == {"diversity", "seed", "noise", "mode"}
    status, leaf = get(server, "/gen/seed")
    assert status == 200 and leaf["VALUE"] == [42] and leaf["FULL_PATH"] == "/gen/seed"
    assert get(server, "/gen/seed?VALUE") == (200, {"VALUE": [42]})
    assert get(server, "/loop/reset?VALUE") == (204, None)


def test_unknown_path_is_404(server: OSCQueryServer) -> None:
    assert get(server, "/gen/nope")[0] == 404
    assert get(server, "/nope")[0] == 404


def test_values_are_current(server: OSCQueryServer, params: Params) -> None:
    assert get(server, "/gen/diversity?VALUE")[1] == {"VALUE": [0.8]}
    params.diversity = 1.25
    assert get(server, "/gen/diversity?VALUE")[1] == {"VALUE": [1.25]}


def test_host_info(server: OSCQueryServer) -> None:
    status, info = get(server, "/?HOST_INFO")
    assert status == 200
    assert info["NAME"] == "test-graph"
    assert info["OSC_PORT"] == 1338
    assert info["OSC_TRANSPORT"] == "UDP"
    assert info["EXTENSIONS"]["VALUE"] is True and info["EXTENSIONS"]["LISTEN"] is False


def test_provider_failure_is_a_500_and_the_server_goes_on(server: OSCQueryServer, params: Params) -> None:
    def broken() -> list[ParamInfo]:
        raise RuntimeError("graph is being edited")

    server.provider = broken
    assert get(server, "/")[0] == 500
    server.provider = params
    assert get(server, "/")[0] == 200


def test_stop_frees_the_port(params: Params) -> None:
    srv = OSCQueryServer(params, osc_port=1338, port=0)
    srv.start()
    port = srv.address[1]
    srv.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", port))
