import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("ACCELFORGE_CACHE", str(ROOT / ".cache" / "accelforge"))


def pytest_addoption(parser):
    parser.addoption("--regress", action="store_true",
                     help="also run the long regression configurations")


def pytest_collection_modifyitems(config, items):
    import pytest

    if config.getoption("--regress"):
        return
    skip = pytest.mark.skip(reason="long regression: run `make regress`")
    for item in items:
        if "regress" in item.keywords:
            item.add_marker(skip)
