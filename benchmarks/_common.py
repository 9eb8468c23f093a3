"""Utilities shared by the benchmark scripts: configuration, timing, memory."""

import math
import os
import platform
import shlex
import statistics
import sys
import time

try:
    import resource
except ImportError:  # Windows has no resource module
    resource = None

import numpy as np
import scipy

import fastem
from fastem._em import Params

__all__ = ["machine_info", "print_header", "timeit_median", "peak_rss_mb",
           "markdown_table", "append_markdown", "synthetic_params"]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _backend_info(name):
    try:
        return fastem.backend_info(name)
    except ImportError as exc:
        return f"unavailable ({exc})"


def machine_info():
    """The configuration a timing depends on, as a dict of strings."""
    try:
        import Cython
        cython_version = Cython.__version__
    except ImportError:
        cython_version = "not installed"
    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cython": cython_version,
        "fastem": fastem.__version__,
        "backend python": str(_backend_info("python")),
        "backend cython": str(_backend_info("cython")),
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
    }
    if hasattr(os, "sched_getaffinity"):
        info["cores usable"] = str(len(os.sched_getaffinity(0)))
    return info


def print_header(title, extra=None):
    """Print the title, the command line, the machine and any ``extra`` items."""
    print(f"# {title}\n")
    print("command: " + command_line())
    items = dict(machine_info())
    items.update(extra or {})
    for key, value in items.items():
        print(f"{key}: {value}")
    print()


def command_line():
    return " ".join(shlex.quote(arg) for arg in [os.path.basename(sys.executable)] + sys.argv)


def timeit_median(fn, repeats, warmup=1):
    """Median wall time of ``fn()`` over ``repeats`` calls, after ``warmup`` calls.

    Returns
    -------
    median : float
        Seconds.
    times : list of float
        Every timed call, in seconds.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_rss_mb():
    """Peak resident memory of this process so far, in MB (NaN if unknown)."""
    if resource is None:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, Linux kilobytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def markdown_table(headers, rows):
    """A Markdown table as a string."""
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def append_markdown(path, title, text):
    """Append ``text`` under ``title`` with the command and machine behind it."""
    info = machine_info()
    config = ", ".join(
        f"{key} {info[key]}" for key in ("python", "numpy", "scipy", "cython", "cpu", "cores")
    )
    with open(path, "a") as f:
        f.write(f"\n## {title}\n\n`{command_line()}`\n\n{config}\n\n{text}\n")


def synthetic_params(data, n_components, seed):
    """Initial mixture: K random users' ratings, missing ones filled by column means.

    Variances are 1 and weights 1/K; ``seed`` picks the users.
    """
    sums = np.bincount(data.indices, weights=data.data, minlength=data.n_features)
    counts = np.bincount(data.indices, minlength=data.n_features)
    overall = data.data.mean() if data.nnz else 0.0
    column_means = np.divide(sums, counts, out=np.full(data.n_features, overall),
                             where=counts > 0)
    rng = np.random.default_rng(seed)
    users = rng.choice(data.n_samples, n_components, replace=False)
    means = np.tile(column_means, (n_components, 1))
    for j, u in enumerate(users):
        start, stop = data.indptr[u], data.indptr[u + 1]
        means[j, data.indices[start:stop]] = data.data[start:stop]
    return Params(means, np.ones(n_components), np.full(n_components, 1.0 / n_components))
