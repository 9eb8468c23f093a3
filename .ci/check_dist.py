"""Checks of the built distributions, run by .ci/run.

python .ci/check_dist.py contents SDIST WHEEL
    The sdist holds the sources (the Tempita template of the kernels, not the
    generated .pyx/.c), the tests and the metadata files; the wheel holds the
    package with its compiled extension and py.typed, and no build sources.
python .ci/check_dist.py smoke --expect cython|python OUT.json
    In a venv where fastem is installed (run from outside the source tree):
    checks which backend is in use, fits a small model and writes its numbers.
python .ci/check_dist.py compare A.json B.json
    The two smoke fits agree to 1e-10 (relative, or absolute near 0).
"""

import argparse
import json
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-10
# Sources of the compiled extension: in the sdist (the template), not in the wheel.
BUILD_SOURCES = (".pyx", ".pyx.tp", ".c", ".h")


def _fail(message):
    sys.exit(f"check_dist: FAIL: {message}")


def _version():
    namespace = {}
    exec((ROOT / "fastem" / "_version.py").read_text(), namespace)
    return namespace["__version__"]


def _tracked(*folders):
    """Files git tracks under these folders (empty outside a git work tree)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", *folders], cwd=ROOT,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {name for name in out.decode().split("\0") if name}


def contents(sdist, wheel):
    version = _version()
    with tarfile.open(sdist) as tar:
        top = f"fastem-{version}/"
        names = {m.name[len(top):] for m in tar.getmembers()
                 if m.isfile() and m.name.startswith(top)}
    required = {"pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "CHANGELOG.md",
                "PKG-INFO", "fastem/_kernels.pyx.tp", "fastem/_version.py",
                "fastem/py.typed", "tests/conftest.py"}
    tracked = {n for n in _tracked("fastem", "tests", "docs")
               if not n.endswith(".gitignore")}
    missing = sorted((required | tracked) - names)
    if missing:
        _fail(f"the sdist lacks {missing}")
    generated = sorted(n for n in names
                       if n.endswith((".c", ".so", ".pyd", ".pyc"))
                       or n in ("fastem/_kernels.pyx", "fastem/_kernels_avx2.pyx")
                       or n.startswith(("build/", "dist/")))
    if generated:
        _fail(f"the sdist holds generated files {generated}")
    print(f"sdist {Path(sdist).name}: {len(names)} entries, template included, "
          "no generated sources")

    with zipfile.ZipFile(wheel) as zf:
        files = set(zf.namelist())
        metadata = zf.read(f"fastem-{version}.dist-info/METADATA").decode()
    if f"\nVersion: {version}\n" not in metadata:
        _fail(f"the wheel's METADATA does not give version {version}")
    extensions = sorted(n for n in files if PurePosixPath(n).parent.name == "fastem"
                        and PurePosixPath(n).name.startswith("_kernels")
                        and n.endswith((".so", ".pyd")))
    if not any(PurePosixPath(n).name.startswith("_kernels.") for n in extensions):
        _fail(f"the wheel has no compiled fastem._kernels (has {extensions})")
    package = {n for n in names if n.startswith("fastem/") and not n.endswith(BUILD_SOURCES)}
    missing = sorted(package - files)
    if missing:
        _fail(f"the wheel lacks files of the package: {missing}")
    if "fastem/py.typed" not in files:
        _fail("the wheel lacks fastem/py.typed")
    sources = sorted(n for n in files if n.endswith(BUILD_SOURCES))
    if sources:
        _fail(f"the wheel holds build sources {sources}")
    print(f"wheel {Path(wheel).name}: {len(files)} files, extensions {extensions}, "
          "py.typed, metadata version " + version)


def smoke(expect, out):
    import warnings

    import numpy as np

    import fastem
    from fastem.course import common, em
    from fastem.datasets import make_ratings

    package = Path(fastem.__file__).resolve().parent
    if ROOT in package.parents:
        _fail(f"fastem was imported from the source tree ({package})")
    with warnings.catch_warnings():
        # The pure fallback warns once that the compiled kernels are missing.
        warnings.simplefilter("ignore", RuntimeWarning)
        info = fastem.backend_info()
    print(f"fastem {fastem.__version__} at {package}: {info}")
    if info["backend"] != expect:
        _fail(f"expected the {expect} backend, got {info}")
    if expect == "cython":
        from fastem import _kernels

        if not info["openmp"]:
            _fail(f"the compiled backend was built without OpenMP: {info}")
        if _kernels.cpu_has_avx2_fma() and info["simd"] != "avx2":
            _fail(f"this CPU has AVX2 and FMA but the AVX2 build is not in use: {info}")

    ratings = make_ratings(300, 40, 3000, n_groups=3, random_state=0)
    model = fastem.GaussianMixture(n_components=3, random_state=0).fit(ratings)
    dense = np.random.RandomState(0).randint(0, 6, size=(60, 8)).astype(float)
    mixture, post = common.init(dense, K=3, seed=0)
    mixture, post, ll = em.run(dense, mixture, post)
    numbers = {
        "backend": info["backend"],
        "n_iter": int(model.n_iter_),
        "log_likelihood": float(model.log_likelihood_),
        "weights": model.weights_.tolist(),
        "means": model.means_.ravel().tolist(),
        "variances": np.ravel(model.variances_).tolist(),
        "course_log_likelihood": float(ll),
        "course_mu": mixture.mu.ravel().tolist(),
        "course_var": mixture.var.tolist(),
        "course_p": mixture.p.tolist(),
        "course_fill": em.fill_matrix(dense, mixture).ravel().tolist(),
    }
    Path(out).write_text(json.dumps(numbers))
    print(f"smoke fit: {model.n_iter_} iterations, log-likelihood "
          f"{model.log_likelihood_:.10f}; course run {ll:.10f}")


def compare(first, second):
    a = json.loads(Path(first).read_text())
    b = json.loads(Path(second).read_text())
    worst = 0.0
    for key in a:
        if key == "backend":
            continue
        x, y = a[key], b[key]
        if isinstance(x, int) or isinstance(y, int):
            if x != y:
                _fail(f"{key}: {x} != {y}")
            continue
        x = x if isinstance(x, list) else [x]
        y = y if isinstance(y, list) else [y]
        if len(x) != len(y):
            _fail(f"{key}: lengths {len(x)} != {len(y)}")
        for u, v in zip(x, y, strict=True):
            err = abs(u - v) / max(1.0, abs(u), abs(v))
            worst = max(worst, err)
            if not err <= TOLERANCE:
                _fail(f"{key}: {u!r} ({a['backend']}) != {v!r} ({b['backend']})")
    print(f"{a['backend']} and {b['backend']} agree: largest relative difference "
          f"{worst:.1e} <= {TOLERANCE:g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("contents")
    p.add_argument("sdist")
    p.add_argument("wheel")
    p = sub.add_parser("smoke")
    p.add_argument("--expect", choices=["cython", "python"], required=True)
    p.add_argument("out")
    p = sub.add_parser("compare")
    p.add_argument("first")
    p.add_argument("second")
    args = parser.parse_args()
    if args.command == "contents":
        contents(args.sdist, args.wheel)
    elif args.command == "smoke":
        smoke(args.expect, args.out)
    else:
        compare(args.first, args.second)


if __name__ == "__main__":
    main()
