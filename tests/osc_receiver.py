"""What a test's UDP receiver (the `receiver` fixture in conftest.py) got: every OSC message waiting now."""

from __future__ import annotations

import select
import socket

from pythonosc.osc_message import OscMessage


def received(sock: socket.socket) -> list[OscMessage]:
    """The messages that arrived, read until none comes for 50 ms."""
    messages = []
    while select.select([sock], [], [], 0.05)[0]:
        messages.append(OscMessage(sock.recv(4096)))
    return messages
