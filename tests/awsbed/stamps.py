"""What a benchmark figure is stamped with, and how it is summarised and written down.

BENCHMARKS.md keeps each figure with the commit it was measured on, the machine and the date
(``commit``, ``machine``, ``today``); figures are summarised by nearest-rank percentiles
(``percentile``); each benchmark rewrites its own section of BENCHMARKS.md between two markers
(``rewrite_section``).
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import REPO


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile `p` (0 to 100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("AMD EPYC"), or "" where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def machine(with_platform: bool = False) -> str:
    """ "2 vCPU AMD EPYC (x86_64)"; with `with_platform`, followed by ", " and the OS (platform.platform())."""
    text = f"{os.cpu_count()} vCPU {cpu_model()} ({platform.machine()})"
    return f"{text}, {platform.platform()}" if with_platform else text


def commit(root: Path = REPO) -> str:
    """The short commit of HEAD, with " + uncommitted changes" if anything but BENCHMARKS.md differs."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!BENCHMARKS.md"], cwd=root, capture_output=True, text=True
    ).stdout
    return out.stdout.strip() + (" + uncommitted changes" if dirty.strip() else "")


def today() -> str:
    """Today's date in UTC, 2026-12-06."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def rewrite_section(path: Path, begin: str, end: str, section: str) -> bool:
    """Replace the text from marker `begin` to marker `end` (both included) with `section`, which holds
    both markers; False, and nothing written, when the file lacks a marker."""
    text = path.read_text()
    if begin not in text or end not in text:
        return False
    path.write_text(text[: text.index(begin)] + section + text[text.index(end) + len(end) :])
    return True
