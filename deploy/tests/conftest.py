"""Lets several suites run in one pytest process (e.g. `pytest deploy/tests/cluster/x.py
deploy/tests/chart/x.py`). Their folders are not packages, so pytest imports every folder's
conftest.py under the one name "conftest" and every test file under its bare name: a test module's
`from conftest import …` would get whichever conftest was loaded last, and two suites' files with
the same name would clash. Before each test module is imported, this points "conftest" at that
module's own folder's conftest and forgets another folder's module of the same name."""
import sys

import pytest


def pytest_collectstart(collector):
    if not isinstance(collector, pytest.Module):
        return
    own = collector.config.pluginmanager.get_plugin(str(collector.path.parent / "conftest.py"))
    if own is not None:
        sys.modules["conftest"] = own
    same_name = sys.modules.get(collector.path.stem)
    if same_name is not None and getattr(same_name, "__file__", None) != str(collector.path):
        del sys.modules[collector.path.stem]
