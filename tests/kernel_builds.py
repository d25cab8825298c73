"""Waiting for one of our C kernels to build in a test: under CI a kernel that does not build fails the
run; elsewhere (no compiler) its tests skip with the reason."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from autolume_graph.gan.cpu_features import Support

BUILD_WAIT_S = 120.0


def require_built(support: Callable[..., Support]) -> None:
    """support(wait_s=...) is the kernel module's own `support`."""
    found = support(wait_s=BUILD_WAIT_S)
    if not found.available:
        if os.environ.get("AUTOLUME_CI"):
            pytest.fail(f"the C kernel must build under CI: {found.reason}")
        pytest.skip(found.reason)
