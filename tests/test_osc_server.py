"""OSC in over real UDP on 127.0.0.1: delivery, latest-wins, garbage floods, clean stop; OSC out."""

from __future__ import annotations

import logging
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from autolume_graph.osc.client import OSCSender
from autolume_graph.osc.decode import decode_packet
from autolume_graph.osc.mailbox import Inbox, Mailbox, RateLimitedLog
from autolume_graph.osc.server import OSCServer


@pytest.fixture
def server() -> Iterator[OSCServer]:
    srv = OSCServer(port=0)
    srv.start()
    yield srv
    srv.stop()


def wait_for(mailbox: Mailbox, done: Callable[[Inbox], bool], timeout: float = 5.0) -> Inbox:
    """Drain like a render loop would, accumulating, until `done(seen)` or timeout."""
    seen: Inbox = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.update(mailbox.drain())
        if done(seen):
            return seen
        time.sleep(0.005)
    return seen


def message(address: str, *args: object, types: str | None = None) -> bytes:
    b = OscMessageBuilder(address=address)
    for i, a in enumerate(args):
        b.add_arg(a, types[i] if types else None)
    return b.build().dgram


def bundle(timetag: float, *dgrams: bytes) -> bytes:
    return (
        b"#bundle\x00"
        + struct.pack(">Q", timetag_bits(timetag))
        + b"".join(struct.pack(">i", len(d)) + d for d in dgrams)
    )


def timetag_bits(unix_seconds: float) -> int:
    ntp = unix_seconds + 2208988800
    return (int(ntp) << 32) | int((ntp % 1) * (1 << 32))


def test_messages_arrive_with_their_args(server: OSCServer) -> None:
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    client = SimpleUDPClient(host, port)
    client.send_message("/gen/diversity", 0.75)
    client.send_message("/gen/seed", 42)
    client.send_message("/preset/recall", "sunset")
    client.send_message("/xy", [0.25, 0.5, True])
    seen = wait_for(server.mailbox, lambda s: len(s) == 4)
    assert {a: args for a, (args, _) in seen.items()} == {
        "/gen/diversity": (0.75,),
        "/gen/seed": (42,),
        "/preset/recall": ("sunset",),
        "/xy": (0.25, 0.5, True),
    }
    now = time.monotonic()
    assert all(now - 5 < t <= now for _, t in seen.values())


def test_type_tags_python_osc_lacks_are_aliased(server: OSCServer) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    impulse = b"/trig\x00\x00\x00,I\x00\x00"
    symbol = b"/sym\x00\x00\x00\x00,S\x00\x00abc\x00"
    char = b"/chr\x00\x00\x00\x00,c\x00\x00" + struct.pack(">i", 65)
    for d in (impulse, symbol, char):
        sock.sendto(d, server.address)
    seen = wait_for(server.mailbox, lambda s: len(s) == 3)
    assert {a: args for a, (args, _) in seen.items()} == {"/trig": (None,), "/sym": ("abc",), "/chr": (65,)}
    sock.close()


def test_latest_value_wins_per_address(server: OSCServer) -> None:
    client = SimpleUDPClient(*server.address)
    n = 1000

    def wait_received(count: int) -> None:
        deadline = time.monotonic() + 5
        while server.mailbox.counts().get("received", 0) < count and time.monotonic() < deadline:
            time.sleep(0.001)

    for i in range(n):
        client.send_message("/v", i)
        client.send_message("/w", -i)
        if i % 50 == 49:
            wait_received(2 * (i + 1))  # never overrun the kernel buffer: this test is about order
    wait_received(2 * n)
    inbox = server.mailbox.drain()
    assert inbox["/v"][0] == (n - 1,)
    assert inbox["/w"][0] == (-(n - 1),)
    assert len(inbox) == 2
    assert server.mailbox.drain() == {}
    counts = server.mailbox.counts()
    assert counts["received"] == 2 * n
    assert counts["coalesced"] == 2 * n - 2


def test_burst_queued_during_the_pause_is_drained_in_order() -> None:
    """The server drains every queued datagram per wake-up (then pauses): a burst sent at once, with
    garbage in the middle, arrives whole, in order, and the garbage is counted, not fatal."""
    srv = OSCServer(port=0)
    srv.start()
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(300):
            sock.sendto(message("/burst", i) if i != 150 else b"\x00garbage", srv.address)
        sock.sendto(message("/after", 1), srv.address)
        seen = wait_for(srv.mailbox, lambda inbox: "/after" in inbox)
        assert seen["/burst"][0] == (299,)
        counts = srv.mailbox.counts()
        assert counts["received"] == 300 and counts["malformed"] == 1
        assert srv.running
    finally:
        srv.stop()


def test_future_stamped_bundle_is_applied_at_once(server: OSCServer) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inner = bundle(time.time() + 3600, message("/nested", 2.0))
    sock.sendto(bundle(time.time() + 3600, message("/future", 1.0), inner), server.address)
    start = time.monotonic()
    seen = wait_for(server.mailbox, lambda s: "/future" in s and "/nested" in s, timeout=2.0)
    assert seen["/future"][0] == (1.0,) and seen["/nested"][0] == (2.0,)
    assert time.monotonic() - start < 1.0
    sock.close()


def garbage(rng: random.Random) -> bytes:
    valid = message("/g/valid", rng.random(), "text", 3)
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if kind == 1:
        return b"/" + rng.randbytes(rng.randrange(0, 120))
    if kind == 2:
        return valid[: rng.randrange(1, len(valid))]
    if kind == 3:  # type tags we cannot parse, or lying about the data that follows
        tags = rng.choice([b",fxq\x00\x00\x00\x00", b",Z\x00\x00", b"fff\x00", b",ffff\x00\x00\x00", b",s\x00\x00"])
        return b"/g/tags\x00" + tags + rng.randbytes(rng.randrange(0, 8))
    if kind == 4:  # future timetag, valid content
        return bundle(time.time() + rng.uniform(10, 1e6), valid)
    if kind == 5:  # element sizes that do not fit
        size = rng.choice([-4, 0, 3, 10_000])
        return b"#bundle\x00" + rng.randbytes(8) + struct.pack(">i", size) + valid
    if kind == 6:  # nested deeper than allowed
        d = valid
        for _ in range(rng.randrange(9, 40)):
            d = bundle(time.time() + 60, d)
        return d
    if kind == 7:  # non-UTF-8 address
        return b"/\xff\xfe\x00,f\x00\x00" + struct.pack(">f", 1.0)
    return b"#bundle\x00" + rng.randbytes(rng.randrange(0, 40))


def test_garbage_flood_never_kills_the_server(caplog: pytest.LogCaptureFixture) -> None:
    rng = random.Random(1234)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # a long interval makes the line count independent of how slow a loaded CI machine is
    with caplog.at_level(logging.WARNING), OSCServer(Mailbox(log=RateLimitedLog(interval_s=120)), port=0) as server:
        for i in range(10_000):
            sock.sendto(garbage(rng), server.address)
            if i % 200 == 0:
                time.sleep(0.002)
        deadline = time.monotonic() + 5
        client = SimpleUDPClient(*server.address)
        seen: Inbox = {}
        while "/after" not in seen and time.monotonic() < deadline:
            client.send_message("/after", 7)
            seen = wait_for(server.mailbox, lambda s: "/after" in s, timeout=0.2)
        assert server.running
        counts = server.mailbox.counts()
    assert seen["/after"][0] == (7,)
    assert counts.get("malformed", 0) > 3000
    assert counts.get("bad-typetag", 0) > 100
    assert counts.get("error", 0) == 0, "an unexpected exception escaped the decoder"
    # one line per kind (malformed, bad-typetag), none from python-osc's per-packet warnings
    assert len(caplog.records) == 2, [r.getMessage() for r in caplog.records]
    assert all(r.name.startswith("autolume_graph") for r in caplog.records)
    sock.close()


def test_stop_joins_the_thread_and_frees_the_port() -> None:
    srv = OSCServer(port=0)
    srv.start()
    port = srv.address[1]
    with pytest.raises(OSError):
        OSCServer(port=port).start()
    srv.stop()
    assert not srv.running
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    again.bind(("127.0.0.1", port))
    again.close()
    with OSCServer(port=port) as reused:
        SimpleUDPClient(*reused.address).send_message("/back", 1)
        assert "/back" in wait_for(reused.mailbox, lambda s: "/back" in s)


def test_decode_packet_keeps_bundle_order() -> None:
    packet = bundle(0, message("/a", 1), bundle(0, message("/b", 2)), message("/a", 3))
    assert decode_packet(packet) == [("/a", (1,)), ("/b", (2,)), ("/a", (3,))]


def test_mailbox_bounds_distinct_addresses() -> None:
    box = Mailbox(max_addresses=3, log=RateLimitedLog(interval_s=60))
    for i in range(5):
        box.post(f"/a{i}", (i,), 0.0)
    box.post("/a0", (9,), 1.0)
    assert box.drain() == {"/a0": ((9,), 1.0), "/a1": ((1,), 0.0), "/a2": ((2,), 0.0)}
    assert box.counts() == {"received": 6, "overflow": 2, "coalesced": 1}
    box.post("/a4", (4,), 2.0)  # room again after a drain
    assert box.drain() == {"/a4": ((4,), 2.0)}


def test_rate_limited_log_reports_counts(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rl = RateLimitedLog(logging.getLogger("autolume_graph.test"), interval_s=5, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        emitted = []
        for step in range(100):
            now[0] = step * 0.1  # 10 s in all
            emitted.append(rl("bad-type", f"/p{step}"))
        assert rl("other") is True
        assert rl("batch", "the latest", occurrences=7) is True  # a server batch counts several at once
        assert rl("batch", occurrences=5) is False
        now[0] = 20.0
        assert rl("batch", occurrences=2) is True
    assert sum(emitted) == 2
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "osc: bad-type (latest: /p0)"
    assert lines[1].startswith("osc: 50 x bad-type in the last 5 s (latest: /p50)")
    assert lines[2] == "osc: other"
    assert lines[3] == "osc: 7 x batch (latest: the latest)"
    assert lines[4].startswith("osc: 7 x batch in the last 10 s")


def test_sender_delivers_and_never_raises(server: OSCServer) -> None:
    out = OSCSender(*server.address)
    assert out.send("/loop/perfect", 1)
    assert out.send("/out/many", 0.5, "s", True, None)
    seen = wait_for(server.mailbox, lambda s: len(s) == 2)
    assert seen["/loop/perfect"][0] == (1,)
    assert seen["/out/many"][0] == (0.5, "s", True, None)
    assert not out.send("/bad", object())
    assert (out.sent, out.failed) == (2, 1)
    out.close()
    for host, port in [("no-such-host.invalid", 9000), ("127.0.0.1", 70000), ("127.0.0.1", 0)]:
        broken = OSCSender(host, port)
        assert broken.send("/x", 1.0) is False
        assert broken.failed == 1
