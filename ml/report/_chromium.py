"""Render a report in headless Chromium (Debian's ``chromium``): a screenshot of how it shows."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM_NAMES", "find_chromium", "screenshot"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium-family browser on PATH, or None."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: str | Path, png: str | Path, *, width: int = 1280, height: int = 4000,
               timeout: float = 120.0, binary: str | None = None) -> Path:
    """Screenshot of the HTML file ``html`` as rendered by headless Chromium.

    Parameters
    ----------
    html, png : path-like
        The report and where to write the PNG (``width`` x ``height`` pixels).
    width, height : int
        Size of the browser window and of the PNG, in pixels.
    timeout : float
        Seconds.
    binary : str, optional
        Browser executable (default :func:`find_chromium`).

    Raises
    ------
    FileNotFoundError
        No browser found.
    RuntimeError
        The browser wrote no screenshot (its stderr is in the message).
    """
    binary = binary or find_chromium()
    if binary is None:
        raise FileNotFoundError(f"no Chromium found on PATH (looked for {', '.join(CHROMIUM_NAMES)})")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
               Path(html).resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return png
