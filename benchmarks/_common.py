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
from fastem._validation import Params

__all__ = ["machine_info", "print_header", "timeit_median", "peak_rss_mb",
           "process_peak_rss_mb", "current_rss_mb", "reset_peak_rss", "markdown_table",
           "append_markdown", "synthetic_params", "observed_column_means", "parse_count",
           "format_count", "cache_sizes", "streaming_bandwidth", "run_child"]


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
    if hasattr(os, "getloadavg"):
        # Other work on a shared machine shows here: timings are only as
        # steady as this number is low.
        info["load average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
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


def observed_column_means(data):
    """Mean of the observed values of each column; the overall mean where none."""
    sums = np.bincount(data.indices, weights=data.data, minlength=data.n_features)
    counts = np.bincount(data.indices, minlength=data.n_features)
    overall = data.data.mean() if data.nnz else 0.0
    return np.divide(sums, counts, out=np.full(data.n_features, overall),
                     where=counts > 0)


def synthetic_params(data, n_components, seed, column_means=None):
    """Initial mixture: K random users' ratings, missing ones filled by column means.

    Variances are 1 and weights 1/K; ``seed`` picks the users. Pass
    ``column_means`` (from :func:`observed_column_means`) to skip computing them, whose
    temporaries (int64 copies of the indices) would count in a peak of memory.
    """
    if column_means is None:
        column_means = observed_column_means(data)
    rng = np.random.default_rng(seed)
    users = rng.choice(data.n_samples, n_components, replace=False)
    means = np.tile(column_means, (n_components, 1))
    for j, u in enumerate(users):
        start, stop = data.indptr[u], data.indptr[u + 1]
        means[j, data.indices[start:stop]] = data.data[start:stop]
    return Params(means, np.ones(n_components), np.full(n_components, 1.0 / n_components))


def _proc_status_mb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def process_peak_rss_mb():
    """Peak resident memory of this process's own address space, in MB.

    Linux keeps ``ru_maxrss`` across fork and exec, so a child started by a
    big parent would report the parent's peak; ``VmHWM`` does not.
    """
    value = _proc_status_mb("VmHWM")
    return peak_rss_mb() if value is None else value


def current_rss_mb():
    """Resident memory of this process now, in MB (NaN if unknown)."""
    value = _proc_status_mb("VmRSS")
    return math.nan if value is None else value


_SUFFIXES = {"k": 10**3, "m": 10**6, "g": 10**9}


def parse_count(text):
    """``'20M'`` -> 20_000_000, ``'500k'`` -> 500_000, ``'1234'`` -> 1234."""
    text = str(text).strip().lower().replace("_", "").replace(",", "")
    scale = _SUFFIXES.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    value = float(number) * scale
    if value != int(value) or value < 0:
        raise ValueError(f"not a count: {text!r}")
    return int(value)


def format_count(n):
    """20_000_000 -> ``'20M'``, 1_500_000 -> ``'1.5M'``, 500_000 -> ``'500k'``."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n / scale:g}{suffix}"
    return str(n)


def cache_sizes():
    """CPU caches of core 0 from sysfs: list of (level, type, bytes, shared by CPUs).

    Empty where sysfs does not describe them.
    """
    caches = []
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        names = sorted(name for name in os.listdir(root) if name.startswith("index"))
    except OSError:
        return caches
    for name in names:
        def read(field):
            with open(os.path.join(root, name, field)) as f:
                return f.read().strip()
        try:
            size = read("size")
            level, kind = int(read("level")), read("type")
        except (OSError, ValueError):
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        size_bytes = int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
        try:
            shared = read("shared_cpu_list")
        except OSError:
            shared = "?"
        caches.append((level, kind, size_bytes, shared))
    return caches


def streaming_bandwidth(size_mb=1024, threads=(1, 2), repeats=5):
    """Read bandwidth of a NumPy sum over a ``size_mb`` float64 array, in GB/s.

    ``n`` threads each sum their own 1/n of the array (NumPy releases the
    GIL inside the sum). Median of ``repeats`` after one warm-up.

    Returns
    -------
    dict of int to (float, list of float)
        Threads -> (median GB/s, every timed run in GB/s).
    """
    import threading

    array = np.ones(size_mb * 2**20 // 8)  # ones, not empty: the pages exist
    results = {}
    for n in threads:
        parts = np.array_split(array, n)

        def run():
            if n == 1:
                array.sum()
                return
            workers = [threading.Thread(target=part.sum) for part in parts]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()

        median, times = timeit_median(run, repeats, warmup=1)
        results[n] = (array.nbytes / median / 1e9, [array.nbytes / t / 1e9 for t in times])
    return results


def run_child(command, env=None):
    """Run ``command`` (a list), pass its stderr through, return its last stdout line as JSON.

    A child process per measurement gives each its own heap and its own peak
    resident memory.
    """
    import json
    import subprocess

    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env)
    if completed.returncode != 0:
        raise RuntimeError(f"child failed with exit status {completed.returncode}: "
                           + " ".join(shlex.quote(str(c)) for c in command))
    lines = completed.stdout.strip().splitlines()
    return json.loads(lines[-1])


def reset_peak_rss():
    """Restart this process's peak resident memory (``VmHWM``) from its current RSS.

    Linux only (``/proc/self/clear_refs``); returns False where unavailable.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True
