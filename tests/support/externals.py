"""Debian packages some tests drive for real (chromium, prometheus, prometheus-alertmanager).

``make test`` installs them with apt when it runs as root and they are missing. Without them a
test skips with one line naming the package; with ``B25_REQUIRE_EXTERNAL=1`` (what ``.ci/run``
sets) it fails instead, so CI always runs them.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_external(binary: str, package: str) -> str:
    """The path of ``binary`` (from Debian's ``package``); skips or fails the test without it."""
    path = shutil.which(binary) or shutil.which(binary, path="/usr/bin:/usr/sbin:/usr/lib/chromium")
    if path:
        return path
    reason = f"needs the Debian package {package} ({binary} not found; `make test` as root installs it)"
    if os.environ.get("B25_REQUIRE_EXTERNAL") == "1":
        pytest.fail(f"B25_REQUIRE_EXTERNAL=1: {reason}", pytrace=False)
    pytest.skip(reason)
