"""Packaging of the installed distribution: version, metadata, shipped files.

The build itself (sdist and wheel contents, installs from each, the fallbacks
to the pure package) is checked by .ci/run, not here.
"""

import importlib.metadata
import importlib.resources
import re
import sys
import warnings
from pathlib import Path

import pytest
from packaging.version import Version

import fastem
from fastem import _version

REPO_ROOT = Path(__file__).resolve().parent.parent
DIST = importlib.metadata.distribution("fastem")


def test_version_has_one_source_and_matches_the_installed_metadata():
    assert fastem.__version__ == _version.__version__
    assert DIST.version == fastem.__version__
    assert importlib.metadata.version("fastem") == fastem.__version__
    assert str(Version(fastem.__version__)) == fastem.__version__  # PEP 440, normalised


def test_pyproject_reads_the_version_from_the_version_module():
    pyproject = REPO_ROOT / "pyproject.toml"
    if not pyproject.is_file() or sys.version_info < (3, 11):
        pytest.skip("needs the source tree's pyproject.toml and tomllib")
    import tomllib

    config = tomllib.loads(pyproject.read_text())
    assert "version" not in config["project"]
    assert "version" in config["project"]["dynamic"]
    dynamic = config["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "fastem._version.__version__"}


def test_changelog_has_an_entry_for_this_version():
    changelog = REPO_ROOT / "CHANGELOG.md"
    if not changelog.is_file():
        pytest.skip("no source tree beside the tests")
    headings = re.findall(r"^## (\S+)", changelog.read_text(), flags=re.MULTILINE)
    assert fastem.__version__ in headings


def test_metadata():
    meta = DIST.metadata
    assert meta["Name"] == "fastem"
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    for minor in range(10, 14):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    # No project address until there is a real one: none is better than a placeholder.
    assert not meta.get_all("Project-URL")
    assert "recommender system" in meta["Keywords"].split(",")
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("numpy") for r in requires)
    assert any(r.startswith("scipy") for r in requires)
    assert {"test", "docs", "dask", "plot"} <= set(meta.get_all("Provides-Extra"))


def test_console_script():
    scripts = importlib.metadata.entry_points(group="console_scripts", name="fastem")
    assert [ep.value for ep in scripts] == ["fastem.__main__:main"]


def test_type_hints_marker_is_shipped():
    assert importlib.resources.files("fastem").joinpath("py.typed").is_file()


def test_installed_files_hold_no_build_sources():
    files = DIST.files
    if files is None:
        pytest.skip("the installer recorded no file list")
    names = [f.name for f in files]
    if not any(name == "_version.py" for name in names):
        pytest.skip("not installed from a wheel (editable or development install)")
    assert "py.typed" in names
    assert not [n for n in names if n.endswith((".pyx", ".pyx.tp", ".c"))]


KEYS = {"backend": str, "openmp": bool, "max_threads": int, "simd": str, "build_flags": str}


def _check_types(info):
    assert set(info) == set(KEYS)
    for key, kind in KEYS.items():
        assert type(info[key]) is kind, (key, info[key])
    assert info["max_threads"] >= 1


def test_backend_info_of_the_pure_backend():
    info = fastem.backend_info("python")
    _check_types(info)
    assert info == {"backend": "python", "openmp": False, "max_threads": 1,
                    "simd": "none", "build_flags": ""}


def test_backend_info_of_the_default_backend():
    with warnings.catch_warnings():
        # The pure fallback warns once that the compiled kernels are missing.
        warnings.simplefilter("ignore", RuntimeWarning)
        info = fastem.backend_info()
    _check_types(info)
    assert info["backend"] in ("cython", "python")


def test_backend_info_reports_the_build_flags_of_the_compiled_backend():
    try:
        info = fastem.backend_info("cython")
    except ImportError:
        pytest.skip("compiled extension not built")
    _check_types(info)
    flags = info["build_flags"].lower()
    assert info["simd"] in ("avx2", "baseline")
    assert re.search(r"(^|\s)[-/]o", flags), flags  # an optimisation level
    # The flags are those of the build in use: OpenMP's iff threaded, AVX2's iff
    # the AVX2 build (-mavx2, or /arch:AVX2 with MSVC).
    assert ("openmp" in flags) == info["openmp"], info
    assert ("avx2" in flags) == (info["simd"] == "avx2"), info
