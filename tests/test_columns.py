"""Every collector returns the same columns, in the same order, with the same dtypes, on every
server version: notebooks and the history store are written against one shape."""
import pytest

import vhdiag
from vhdiag.collect import registry

FRAMES = [entry.method for entry in registry.collectors()]


@pytest.fixture(scope="module")
def frames_by_version(servers):
    out = {}
    for key in servers.versions:
        pg = servers.get(key)
        with vhdiag.connect(pg.dsn()) as target:
            out[key] = {name: getattr(target, name)() for name in FRAMES}
    return out


@pytest.mark.parametrize("name", FRAMES)
def test_same_columns_on_every_version(frames_by_version, name):
    shapes = {key: [(c, str(t)) for c, t in frames[name].dtypes.items()] for key, frames in frames_by_version.items()}
    first, *rest = shapes.values()
    assert first, f"{name} has no columns"
    for key, shape in shapes.items():
        assert shape == first, f"{name} differs on {key}"


@pytest.mark.parametrize("name", FRAMES)
def test_timestamps_are_utc(frames_by_version, name):
    for frames in frames_by_version.values():
        for column, dtype in frames[name].dtypes.items():
            if "datetime" in str(dtype):
                assert str(dtype) == "datetime64[ns, UTC]", (name, column, dtype)
