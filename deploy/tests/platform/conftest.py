"""Shared fixtures for the platform suite: repository paths and loaded assets."""
import json
import pathlib
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
OBS = ROOT / "deploy" / "observability"
sys.path.insert(0, str(pathlib.Path(__file__).parent))


@pytest.fixture(scope="session")
def root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def rule_files() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted((OBS / "rules").glob("*.yaml"))}


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((OBS / "dashboards").glob("*.json"))}


@pytest.fixture(scope="session")
def metrics_list() -> dict:
    return yaml.safe_load((OBS / "metrics.yaml").read_text())
