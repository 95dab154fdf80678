"""Headless Chromium (Debian package `chromium`) for tests that draw HTML pages: DOM after scripts
ran, and screenshots. The network is cut off (every host name fails to resolve), so a page that
needs a CDN fails to draw."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--virtual-time-budget=15000",
]


def chromium() -> str:
    """The chromium binary; skips the test where it is missing, except in CI (.ci/run installs it)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return path


def _run(args: list[str], page: Path) -> subprocess.CompletedProcess[str]:
    # a helper process may still write to the profile as the browser exits: cleanup errors are left
    with tempfile.TemporaryDirectory(prefix="prefmill-chromium-", ignore_cleanup_errors=True) as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def dump_dom(page: Path) -> str:
    """The page's DOM after its scripts ran."""
    result = _run(["--dump-dom"], page)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400) -> Path:
    """A PNG of the page's first ``width`` x ``height`` pixels."""
    result = _run([f"--screenshot={png}", f"--window-size={width},{height}"], page)
    assert result.returncode == 0 and png.exists(), result.stderr[-2000:]
    return png
