"""Shared fixtures: the course data files and the kernel backends."""

import functools
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COURSE_DATA = REPO_ROOT.parent / "shared" / "data" / "mit686x"


def _on_ci():
    return os.environ.get("CI", "") == "true"


def _skip_or_fail(reason):
    # Locally a missing optional resource skips; on CI it must not go unnoticed.
    if _on_ci():
        pytest.fail(f"{reason} (CI=true: this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def course_data_dir():
    """Folder of the MIT 6.86x data files (FASTEM_COURSE_DATA overrides it)."""
    override = os.environ.get("FASTEM_COURSE_DATA")
    folder = Path(override) if override else DEFAULT_COURSE_DATA
    if not folder.is_dir():
        _skip_or_fail(
            "course data folder ../shared/data/mit686x not found"
            + (f" (FASTEM_COURSE_DATA={override})" if override else "")
        )
    return folder


@pytest.fixture(scope="session")
def load_course_file(course_data_dir):
    """``load(name)``: a course file as a float64 array, read from disk only once."""

    @functools.lru_cache(maxsize=None)
    def _read(name):
        path = course_data_dir / name
        if not path.is_file():
            _skip_or_fail(f"course data file {name} not found in {course_data_dir}")
        return np.loadtxt(path)

    def load(name):
        # A copy, so that a test that writes into its array cannot affect another.
        return _read(name).copy()

    return load


@pytest.fixture(scope="session", params=["python", "cython"])
def backend(request):
    """Name of a kernel backend, for ``backend=`` of fastem._em's functions.

    A fixture that is not function-scoped can be used by hypothesis tests.
    """
    name = request.param
    if name == "cython":
        try:
            importlib.import_module("fastem._kernels")
        except (ImportError, OSError) as exc:
            _skip_or_fail(f"compiled backend fastem._kernels cannot be imported: {exc}")
    return name


def pytest_collection_modifyitems(config, items):
    """With FASTEM_TEST_DEFAULT_BACKEND_ONLY=1, run only what the default backend decides.

    A test taking the ``backend`` fixture names its backend (both, in turn),
    so its result does not depend on FASTEM_BACKEND: ``.ci/run`` sets this
    for its second run of the suite, on the pure backend, after a first run
    that ran those tests on both.
    """
    if os.environ.get("FASTEM_TEST_DEFAULT_BACKEND_ONLY") != "1":
        return
    kept = [item for item in items if "backend" not in getattr(item, "fixturenames", ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
