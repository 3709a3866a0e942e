"""Helpers the chart, platform and cluster suites share (deploy/tests/conftest.py puts this folder
on sys.path: pytest imports it first, in prepend mode)."""
import shutil
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
