"""`pytest --nbval-lax notebooks/` runs the notebooks against a database the tests start.

tests/conftest.py starts the servers and, through ``notebook_setup``, sets VHDIAG_DSN and
VHDIAG_HISTORY, which the notebooks' default parameters read (the kernel inherits os.environ).
`./run test` (testpaths: tests, notebooks) loads that file as the conftest of tests/; pytest on
notebooks/ alone does not, so it is registered here, once. Its hooks apply to tests/ only, so
the notebook cells' setup and teardown call it from here (it ignores items that are not cells).
This file sits at the repository root, not in notebooks/, because notebooks/ ships in the wheel.
"""
import importlib.util
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent / "tests"
_tests = None


def pytest_configure(config):
    global _tests
    conftest = TESTS / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == conftest:
            _tests = plugin
            return
    sys.path.insert(0, str(TESTS))
    spec = importlib.util.spec_from_file_location("vhdiag_tests_conftest", conftest)
    _tests = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = _tests  # dataclasses look their module up while it runs
    spec.loader.exec_module(_tests)
    config.pluginmanager.register(_tests, "vhdiag_tests_conftest")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _tests.notebook_setup(item)


def pytest_runtest_teardown(item, nextitem):
    _tests.notebook_teardown(item, nextitem)
