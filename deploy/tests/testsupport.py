"""Helpers the chart, platform and cluster suites share (deploy/tests/conftest.py puts this folder
on sys.path: pytest imports it first, in prepend mode)."""
import shutil
import socket
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tool(name):
    """A tool from .tools (scripts/tools.sh, scripts/cluster.sh), else from PATH; fails the test
    naming the install step when it is nowhere."""
    for cand in (ROOT / ".tools" / "bin" / name, ROOT / ".tools" / "venv" / "bin" / name):
        if cand.exists():
            return str(cand)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not installed: run `scripts/tools.sh helm` / `scripts/tools.sh venv` "
                    "(make test does)")
    return found


def free_port():
    """A loopback port free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2):
    """The body of GET `url`, or None when it cannot be had (refused, an error status, a timeout)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return None


def wait_for(what, predicate, timeout=30, interval=0.2):
    """Polls `predicate` until it returns something truthy, and returns that; fails the test
    naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
