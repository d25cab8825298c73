"""Failures remembered by the inputs that caused them, so a render loop does not retry them every frame.

Why: a node or a store asked every frame for something that failed (a model file, an NDI source
name, a model pair that cannot mix) would redo the failing work each frame and flood its status.
The memo answers the same one-line message while the same inputs come again, and forgets it as
soon as they change (a new path, a new mtime, another model), so a fix is picked up at once.

Keys are the inputs themselves (hashable; objects such as models compare by identity). The memo
holds at most `capacity` keys, the oldest dropped first; one key (the default) is "the last
attempt". It takes no lock: its owner serialises access (a render-thread node, a store's lock).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class FailureMemo:
    """Up to `capacity` failure messages by the key of the inputs that caused each."""

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._messages: OrderedDict[Hashable, str] = OrderedDict()

    def failure(self, key: Hashable) -> str | None:
        """The message remembered for `key`, or None when these inputs have not failed."""
        return self._messages.get(key)

    def remember(self, key: Hashable, message: str) -> str:
        """Remember that `key` failed with `message` (returned, for `raise Error(memo.remember(...))`)."""
        self._messages[key] = message
        self._messages.move_to_end(key)
        while len(self._messages) > self.capacity:
            self._messages.popitem(last=False)
        return message

    def forget(self) -> None:
        """Forget every failure: the next attempt runs whatever its inputs (a retry the user asked for)."""
        self._messages.clear()

    def __bool__(self) -> bool:
        return bool(self._messages)
