"""Scaling of one EM iteration with the ratings and with K, memory, and a full fit.

Method: ``fastem.datasets.make_ratings`` draws ratings on the Netflix Prize
shape (480,189 x 17,770) once per size (``--sizes``, default 1M 5M 20M; add
100M for the Netflix Prize size, whose generation takes about 30 s and
2.7 GB) and saves the CSR arrays to a scratch folder. Every measurement then
runs in a fresh Python process that loads them, so that each point has its
own heap and its own peak resident memory (``VmHWM``), and so that no earlier
measurement leaves the heap fragmented for a later one.

- **Scaling curve** (K = 12, ``--dtypes`` float64 float32, ``--threads`` 1 2):
  seconds per EM iteration, one fused pass plus the M-step with the buffers
  of a ``PassBuffers``, the median of ``--repeats`` iterations after one
  warm-up; nanoseconds per observed entry and component; the speed-up of the
  threads and of float32; and the linearity in the number of ratings,
  seconds per iteration and rating relative to 20M (``--reference-size``).
- **Memory**: the peak resident memory of that process, and of another that
  fits ``fastem.GaussianMixture(12, max_iter=3, init_params='random_from_data',
  tol=0)`` on the same ``ObservedData``, against the bound
  ``1.5 x (CSR bytes + n x K x 8) + 200 MB``: the fit must make no copy of
  the data. Both include the interpreter and the loaded data.
- **K sweep** (``--k-values`` 1 4 12 32 64 at ``--k-size`` 20M, float64):
  seconds per iteration divided by K, relative to K = 12; linear cost means
  1.00 (within 15%). One process per thread count times every K, the K
  values taking turns iteration by iteration, so that other work on the
  machine weighs on all of them alike. The kernels pad K to a width of 4, 8,
  12, 16, 24, 32 or a multiple of 4, shown in the table.
- **Roofline**: bytes of input read per iteration (values, column indices,
  row pointers) over the time of an iteration, against the streaming
  bandwidth of this machine (a NumPy sum over a ``--bandwidth-mb`` array by
  1 and 2 threads, median of 5), and the per-thread working set of the
  pass (a block of parameters and accumulators per column, K padded)
  against the CPU caches read from sysfs.
- **Full fit** (``--fit-size``, default the largest size): wall time of
  ``GaussianMixture(12, max_iter=50, tol=0, n_threads=2, init_params=...)``
  on float64 data, initialisation included (target: 60 s at 100M ratings).

Example::

    PYTHONPATH=. python benchmarks/bench_scale.py --sizes 1M 5M 20M 100M
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _common import (append_markdown, cache_sizes, current_rss_mb, format_count,
                     markdown_table, observed_column_means, parse_count, print_header,
                     process_peak_rss_mb, reset_peak_rss, run_child, streaming_bandwidth,
                     synthetic_params, timeit_median)
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS

MB = 2**20
BOUND_FACTOR, BOUND_EXTRA_MB = 1.5, 200
LINEAR_TOLERANCE = 0.15
FIT_TARGET_SECONDS, FIT_TARGET_SIZE = 60.0, 100_000_000


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="*", default=["1M", "5M", "20M"],
                        help="ratings of the scaling curve, e.g. 1M 5M 20M 100M "
                             "(default: %(default)s); none to skip it")
    parser.add_argument("--n-users", type=int, default=NETFLIX_N_USERS)
    parser.add_argument("--n-items", type=int, default=NETFLIX_N_ITEMS)
    parser.add_argument("--components", type=int, default=12,
                        help="K of the scaling curve and the fits (default: %(default)s)")
    parser.add_argument("--dtypes", nargs="+", choices=["float64", "float32"],
                        default=["float64", "float32"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="n_threads of the scaling curve and the K sweep "
                             "(default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed iterations per point, after one warm-up "
                             "(default: %(default)s)")
    parser.add_argument("--reference-size", default="20M",
                        help="size the nnz linearity is relative to; the largest size "
                             "below it if absent (default: %(default)s)")
    parser.add_argument("--k-values", type=int, nargs="*", default=[1, 4, 12, 32, 64],
                        help="K of the K sweep (default: %(default)s); none to skip")
    parser.add_argument("--k-size", default="20M",
                        help="ratings of the K sweep (default: %(default)s)")
    parser.add_argument("--fit-size", default=None,
                        help="ratings of the full fit (default: the largest of --sizes)")
    parser.add_argument("--fit-iterations", type=int, default=50)
    parser.add_argument("--fit-threads", type=int, default=2)
    parser.add_argument("--fit-inits", nargs="*", default=["k-means++", "random_from_data"],
                        help="init_params of the full fits (default: %(default)s); "
                             "none to skip them")
    parser.add_argument("--skip-memory-fits", action="store_true",
                        help="skip the 3-iteration estimator fits of the memory check")
    parser.add_argument("--bandwidth-mb", type=int, default=1024,
                        help="array size of the streaming bandwidth (default: %(default)s)")
    parser.add_argument("--backend", choices=["cython", "python"], default="cython")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data and of the initial means")
    parser.add_argument("--cache-dir", type=Path,
                        help="keep the generated arrays here and reuse them (default: a "
                             "temporary folder, removed at the end)")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result tables and the command line to FILE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = sorted({parse_count(s) for s in args.sizes})
    args.k_size = parse_count(args.k_size)
    args.reference_size = parse_count(args.reference_size)
    if args.fit_size:
        args.fit_size = parse_count(args.fit_size)
    elif args.sizes:
        args.fit_size = max(args.sizes)
    elif args.fit_inits:
        parser.error("--fit-size is needed when --sizes is empty")
    return args


# ---------------------------------------------------------------------------
# Child processes: each prints one JSON line.


def _folder(spec):
    return Path(spec["dir"])


def load_data(spec):
    from fastem import ObservedData

    folder = _folder(spec)
    meta = json.loads((folder / "meta.json").read_text())
    data = np.load(folder / f"data-{spec['dtype']}.npy")
    indices = np.load(folder / "indices.npy")
    indptr = np.load(folder / "indptr.npy")
    return ObservedData(data, indices, indptr, meta["n_items"], copy=False)


def child_generate(spec):
    from fastem.datasets import make_ratings

    start = time.perf_counter()
    data = make_ratings(spec["n_users"], spec["n_items"], spec["n_ratings"],
                        random_state=spec["seed"])
    seconds = time.perf_counter() - start
    peak = process_peak_rss_mb()
    folder = _folder(spec)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "indices.npy", data.indices)
    np.save(folder / "indptr.npy", data.indptr)
    np.save(folder / "data-float64.npy", data.data)
    # The ratings are small integers: float32 holds the same values.
    np.save(folder / "data-float32.npy", data.data.astype(np.float32))
    # For the initial means, so that the measuring processes need not compute them.
    np.save(folder / "column-means.npy", observed_column_means(data))
    meta = {"n_users": spec["n_users"], "n_items": spec["n_items"],
            "n_ratings": spec["n_ratings"], "seed": spec["seed"],
            "seconds": seconds, "peak_rss_mb": peak}
    (folder / "meta.json").write_text(json.dumps(meta))
    return meta


def child_iteration(spec):
    """Median seconds of one iteration (fused pass + M-step) from fixed parameters."""
    from fastem._em import mstep
    from fastem._pass import PassBuffers
    from fastem._validation import check_params

    data = load_data(spec)
    rss_loaded, peak_loaded = current_rss_mb(), process_peak_rss_mb()
    K, threads, backend = spec["K"], spec["threads"], spec["backend"]
    means = np.load(_folder(spec) / "column-means.npy")
    params = check_params(synthetic_params(data, K, spec["seed"], column_means=means),
                          data.n_features)
    buffers = PassBuffers(K, data.n_features, backend=backend, n_threads=threads)
    workspace = buffers.workspace

    def iteration():
        buffers.fused_pass(data, params)
        mstep(buffers.stats, params.means, params.variances, data.n_samples)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    median, times = timeit_median(iteration, spec["repeats"], warmup=1)
    return {**_data_summary(data), "median": median, "times": times, "load": load,
            "rss_loaded_mb": rss_loaded, "peak_loaded_mb": peak_loaded,
            "peak_rss_mb": process_peak_rss_mb(),
            "workspace_bytes": 0 if workspace is None else workspace.nbytes}


def child_sweep(spec):
    """Median seconds of one iteration for each K, the K values taking turns.

    One process for all K, each round timing one iteration of every K in a
    rotating order: a burst of other work on the machine then slows every K
    alike instead of the few measured during it, which keeps the ratios
    between K steadier than separate runs would.
    """
    from fastem._em import mstep
    from fastem._pass import PassBuffers
    from fastem._validation import check_params

    data = load_data(spec)
    threads, backend = spec["threads"], spec["backend"]
    means = np.load(_folder(spec) / "column-means.npy")
    iterations = {}
    for K in spec["Ks"]:
        params = check_params(synthetic_params(data, K, spec["seed"], column_means=means),
                              data.n_features)
        buffers = PassBuffers(K, data.n_features, backend=backend, n_threads=threads)

        def iteration(params=params, buffers=buffers):
            buffers.fused_pass(data, params)
            mstep(buffers.stats, params.means, params.variances, data.n_samples)

        iterations[K] = iteration
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for iteration in iterations.values():
        iteration()  # warm-up
    times = {K: [] for K in iterations}
    order = list(iterations)
    for r in range(spec["repeats"]):
        for K in order[r % len(order):] + order[:r % len(order)]:
            start = time.perf_counter()
            iterations[K]()
            times[K].append(time.perf_counter() - start)
    summary = _data_summary(data)
    return {str(K): {**summary, "median": float(np.median(t)), "times": t, "load": load}
            for K, t in times.items()}


def child_fit(spec):
    """Wall time and peak memory of GaussianMixture.fit on the ObservedData."""
    import fastem

    data = load_data(spec)
    rss_loaded, peak_loaded = current_rss_mb(), process_peak_rss_mb()
    model = fastem.GaussianMixture(spec["K"], max_iter=spec["max_iter"], tol=0,
                                   init_params=spec["init"], n_threads=spec["threads"],
                                   random_state=spec["seed"], backend=spec["backend"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        start = time.perf_counter()
        model.fit(data)
        seconds = time.perf_counter() - start
    result = {**_data_summary(data), "seconds": seconds, "n_iter": model.n_iter_,
              "log_likelihood": model.log_likelihood_, "rss_loaded_mb": rss_loaded,
              "peak_loaded_mb": peak_loaded, "peak_rss_mb": process_peak_rss_mb()}
    if spec.get("breakdown"):
        result.update(_fit_breakdown(data, spec))
    return result


def _fit_breakdown(data, spec):
    """Peak memory above the loaded data of the fit's two phases, run again apart:
    the initialisation, then EM from its parameters."""
    from fastem._init import initial_params
    from fastem._memory import InMemorySource, run_em

    out = {}
    before = current_rss_mb()
    if not reset_peak_rss():
        return out
    source = InMemorySource(data, backend=spec["backend"], n_threads=spec["threads"])
    params = initial_params(source, spec["K"], spec["init"],
                            np.random.RandomState(spec["seed"]),
                            covariance_type="spherical", min_variance=0.25)
    out["init_extra_mb"] = process_peak_rss_mb() - before
    before = current_rss_mb()
    reset_peak_rss()
    run_em(data, params, tol=0, max_iter=spec["max_iter"], backend=spec["backend"],
           n_threads=spec["threads"])
    out["em_extra_mb"] = process_peak_rss_mb() - before
    return out


def child_bandwidth(spec):
    results = streaming_bandwidth(spec["size_mb"], spec["threads"])
    return {str(n): value for n, value in results.items()}


def _data_summary(data):
    return {"n": data.n_samples, "d": data.n_features, "nnz": data.nnz,
            "csr_bytes": data.data.nbytes + data.indices.nbytes + data.indptr.nbytes}


CHILDREN = {"generate": child_generate, "iteration": child_iteration, "sweep": child_sweep,
            "fit": child_fit, "bandwidth": child_bandwidth}


def child(kind, **spec):
    """Run one measurement in a fresh process; return its result."""
    spec["kind"] = kind
    return run_child([sys.executable, __file__, "--child", json.dumps(spec)])


# ---------------------------------------------------------------------------
# The parent: data, points, tables.


class Datasets:
    """Generated rating arrays, one folder per size, made on first use."""

    def __init__(self, root, args):
        self.root, self.args = root, args

    def folder(self, n_ratings):
        args = self.args
        name = f"ratings-{args.n_users}x{args.n_items}-{n_ratings}-seed{args.seed}"
        folder = self.root / name
        if not (folder / "meta.json").is_file():
            print(f"generating {n_ratings:,} ratings ...", flush=True)
            meta = child("generate", dir=str(folder), n_users=args.n_users,
                         n_items=args.n_items, n_ratings=n_ratings, seed=args.seed)
            print(f"  {meta['seconds']:.1f} s, peak RSS {meta['peak_rss_mb']:.0f} MB",
                  flush=True)
        return str(folder)

    def meta(self, n_ratings):
        return json.loads((Path(self.folder(n_ratings)) / "meta.json").read_text())


def bound_mb(result, K):
    return BOUND_FACTOR * (result["csr_bytes"] + result["n"] * K * 8) / MB + BOUND_EXTRA_MB


def verdict(ok):
    return "yes" if ok else "**no**"


def within(ratio):
    return abs(ratio - 1.0) <= LINEAR_TOLERANCE


def measure_scaling(args, datasets):
    points = {}
    for size in args.sizes:
        folder = datasets.folder(size)
        for dtype in args.dtypes:
            for threads in args.threads:
                common = dict(dir=folder, dtype=dtype, K=args.components, threads=threads,
                              seed=args.seed, backend=args.backend)
                it = child("iteration", repeats=args.repeats, **common)
                fit = None
                if not args.skip_memory_fits:
                    fit = child("fit", max_iter=3, init="random_from_data", breakdown=True,
                                **common)
                points[size, dtype, threads] = (it, fit)
                line = (f"  {format_count(size):>5} {dtype} threads={threads}: "
                        f"{it['median']:.4f} s/iter, peak RSS {it['peak_rss_mb']:.0f} MB")
                if fit:
                    line += f"; 3-iteration fit {fit['seconds']:.2f} s, " \
                            f"peak RSS {fit['peak_rss_mb']:.0f} MB"
                print(line + f" (bound {bound_mb(it, args.components):.0f} MB)", flush=True)
    return points


def reference_size(args):
    below = [s for s in args.sizes if s <= args.reference_size]
    return args.reference_size if args.reference_size in args.sizes else \
        (max(below) if below else min(args.sizes))


def scaling_table(args, points):
    K = args.components
    ref = reference_size(args)
    rows = []
    for (size, dtype, threads), (it, fit) in sorted(points.items()):
        seconds = it["median"]
        one = points.get((size, dtype, min(args.threads)))
        f64 = points.get((size, "float64", threads))
        per_nnz = seconds / it["nnz"]
        ref_point = points[ref, dtype, threads][0]
        linear = per_nnz / (ref_point["median"] / ref_point["nnz"])
        rows.append([
            f"{format_count(size)} ({it['nnz']:,})", dtype, threads,
            f"{seconds:.4f}", f"{min(it['times']):.4f}-{max(it['times']):.4f}",
            f"{seconds / (it['nnz'] * K) * 1e9:.3f}",
            f"{one[0]['median'] / seconds:.2f}x" if one else "-",
            f"{f64[0]['median'] / seconds:.2f}x" if f64 else "-",
            f"{linear:.2f} ({'within 15%' if within(linear) else '**outside 15%**'})",
            f"{it['load']:.1f}",
        ])
    headers = ["ratings", "dtype", "threads", "s / iteration (median)", "range",
               "ns / (entry x K)", f"vs {min(args.threads)} thread",
               "vs float64", f"s/iter per rating, / {format_count(ref)}",
               "load average"]
    return markdown_table(headers, rows)


def memory_table(args, points):
    K = args.components
    rows = []
    for (size, dtype, threads), (it, fit) in sorted(points.items()):
        bound = bound_mb(it, K)
        peaks = [it["peak_rss_mb"]] + ([fit["peak_rss_mb"]] if fit else [])
        rows.append([
            format_count(size), dtype, threads, f"{it['csr_bytes'] / MB:.0f}",
            f"{it['n'] * K * 8 / MB:.0f}", f"{it['rss_loaded_mb']:.0f}",
            f"{it['peak_loaded_mb']:.0f}", f"{it['peak_rss_mb']:.0f}",
            f"{fit['peak_rss_mb']:.0f} ({fit['seconds']:.2f} s)" if fit else "-",
            f"{fit['init_extra_mb']:.0f} / {fit['em_extra_mb']:.0f}"
            if fit and "init_extra_mb" in fit else "-",
            f"{bound:.0f}", verdict(max(peaks) <= bound),
        ])
    headers = ["ratings", "dtype", "threads", "CSR (MB)", "n x K x 8 (MB)",
               "RSS with data loaded (MB)", "peak RSS of loading (MB)",
               "peak RSS, iterations (MB)",
               "peak RSS, 3-iteration fit (MB)",
               "above the data: initialisation / EM (MB)", "bound (MB)", "bound holds"]
    return markdown_table(headers, rows)


def measure_k_sweep(args, datasets):
    folder = datasets.folder(args.k_size)
    points = {}
    for threads in args.threads:
        sweep = child("sweep", dir=folder, dtype="float64", Ks=args.k_values,
                      threads=threads, repeats=args.repeats, seed=args.seed,
                      backend=args.backend)
        for K in args.k_values:
            it = sweep[str(K)]
            points[K, threads] = it
            print(f"  K={K:3d} threads={threads}: {it['median']:.4f} s/iter", flush=True)
    return points


def padded_width(K, d, backend):
    """Components the compiled kernels work on (K rounded up), from the workspace size."""
    from fastem._backend import get_backend

    kernels = get_backend(backend)
    size = kernels.workspace_size(K, d, 1, False)
    if not size:
        return None
    return (size - 8) // (3 * d)


def k_sweep_table(args, points):
    rows = []
    for (K, threads), it in sorted(points.items(), key=lambda item: (item[0][1], item[0][0])):
        ref = points.get((12, threads))
        width = padded_width(K, it["d"], args.backend)
        ratio = (it["median"] / K) / (ref["median"] / 12) if ref else float("nan")
        rows.append([
            K, width if width else "-", threads, f"{it['median']:.4f}",
            f"{it['median'] / (it['nnz'] * K) * 1e9:.3f}",
            f"{ratio:.2f} ({'within 15%' if within(ratio) else '**outside 15%**'})",
            f"{(it['median'] / width) / (ref['median'] / 12):.2f}" if width and ref else "-",
            f"{it['load']:.1f}",
        ])
    headers = ["K", "padded width", "threads", "s / iteration (median)",
               "ns / (entry x K)", "(s/iter / K) / (same at K = 12)",
               "same per padded width", "load average"]
    return markdown_table(headers, rows)


def roofline_table(args, points, bandwidth):
    size = reference_size(args)
    K = args.components
    rows = []
    for (s, dtype, threads), (it, _) in sorted(points.items()):
        if s != size:
            continue
        gbs = it["csr_bytes"] / it["median"] / 1e9
        stream = bandwidth.get(str(threads), [float("nan")])[0]
        post_bytes = it["n"] * K * 8
        rows.append([
            f"{format_count(size)}", dtype, threads, f"{it['csr_bytes'] / 1e6:.0f}",
            f"{post_bytes / 1e6:.0f}", f"{it['median']:.4f}", f"{gbs:.2f}",
            f"{stream:.2f}", f"{gbs / stream:.0%}",
            f"{it['csr_bytes'] / (stream * 1e9) * 1e3:.1f}",
        ])
    headers = ["ratings", "dtype", "threads", "input read / iter (MB)",
               "posteriors written / iter (MB)", "s / iteration",
               "achieved input bandwidth (GB/s)", "streaming bandwidth (GB/s)",
               "fraction", "input-read time at streaming speed (ms)"]
    return markdown_table(headers, rows)


def working_set_table(args, n_features):
    caches = [c for c in cache_sizes() if c[1] in ("Data", "Unified")]
    ks = sorted(set(args.k_values) | {args.components})
    rows = []
    for K in ks:
        width = padded_width(K, n_features, args.backend)
        if width is None:
            continue
        column = 3 * width * 8  # means, then x sums and counts, one per padded component
        per_thread = column * n_features
        # L1 and L2 are per core; a shared L3 holds the blocks of every thread.
        threads = max(args.threads)
        fits = next((f"L{level}" + (f" ({threads} threads)" if level >= 3 else "")
                     for level, _, size, _ in caches
                     if per_thread * (threads if level >= 3 else 1) <= size), "none")
        rows.append([K, width, column, f"{per_thread / 2**20:.2f}",
                     f"{K * n_features * 8 * 3 / 2**20:.2f}", fits])
    headers = ["K", "padded width", "bytes per column block", "per-thread blocks (MiB)",
               "unpadded K x d x 3 x 8 (MiB)", "smallest cache holding them"]
    text = markdown_table(headers, rows)
    if caches:
        text += "\n\nCaches of core 0 (sysfs): " + ", ".join(
            f"L{level} {kind.lower()} {size // 1024:,} KiB (CPUs {shared})"
            for level, kind, size, shared in caches)
    return text


def measure_full_fits(args, datasets):
    folder = datasets.folder(args.fit_size)
    results = {}
    for init in args.fit_inits:
        fit = child("fit", dir=folder, dtype="float64", K=args.components,
                    threads=args.fit_threads, max_iter=args.fit_iterations, init=init,
                    seed=args.seed, backend=args.backend)
        results[init] = fit
        print(f"  fit {format_count(args.fit_size)} init={init}: {fit['seconds']:.1f} s, "
              f"{fit['n_iter']} iterations, peak RSS {fit['peak_rss_mb']:.0f} MB", flush=True)
    return results


def full_fit_table(args, fits, points):
    K = args.components
    rows = []
    it = points.get((args.fit_size, "float64", args.fit_threads), (None, None))[0]
    for init, fit in fits.items():
        em = f"{fit['n_iter'] * it['median']:.1f}" if it else "-"
        target = "-"
        if args.fit_size >= FIT_TARGET_SIZE and args.fit_iterations >= 50:
            target = verdict(fit["seconds"] <= FIT_TARGET_SECONDS)
        bound = bound_mb(fit, K)
        rows.append([
            f"{format_count(args.fit_size)} ({fit['nnz']:,})", init, args.fit_threads,
            fit["n_iter"], f"{fit['seconds']:.1f}", em, f"{fit['log_likelihood']:.6e}",
            f"{fit['peak_rss_mb']:.0f} (bound {bound:.0f}: "
            f"{verdict(fit['peak_rss_mb'] <= bound)})",
            target,
        ])
    headers = ["ratings", "init_params", "threads", "EM iterations", "fit seconds (total)",
               "of which EM iterations, est. (s)", "log-likelihood", "peak RSS (MB)",
               f"<= {FIT_TARGET_SECONDS:.0f} s at 100M"]
    return markdown_table(headers, rows)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(CHILDREN[spec.pop("kind")](spec)))
        return
    K = args.components
    print_header("fastem scaling on the Netflix Prize shape", {
        "data": f"make_ratings({args.n_users:,}, {args.n_items:,}, n, "
                f"random_state={args.seed}), n in "
                + (", ".join(format_count(s) for s in args.sizes) or "-"),
        "K": str(K), "dtypes": " ".join(args.dtypes),
        "threads": " ".join(map(str, args.threads)), "backend": args.backend,
        "repeats": f"{args.repeats} iterations per point (median, after 1 warm-up), "
                   "one process per point",
        "K sweep": (f"K in {args.k_values} at {format_count(args.k_size)}"
                    if args.k_values else "skipped"),
        "full fits": (f"{args.fit_iterations} iterations at {format_count(args.fit_size)}, "
                      f"{args.fit_threads} threads, init {', '.join(args.fit_inits)}"
                      if args.fit_inits else "skipped"),
    })
    started = time.perf_counter()
    if args.cache_dir:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        root, scratch = args.cache_dir, None
    else:
        scratch = tempfile.mkdtemp(prefix="fastem-bench-scale-")
        root = Path(scratch)
    try:
        datasets = Datasets(root, args)
        print(f"streaming bandwidth: NumPy sum over {args.bandwidth_mb} MB ...", flush=True)
        bandwidth = child("bandwidth", size_mb=args.bandwidth_mb,
                          threads=sorted(set(args.threads) | {1, 2}))
        for n, (gbs, _) in sorted(bandwidth.items()):
            print(f"  {n} thread(s): {gbs:.2f} GB/s", flush=True)
        points = {}
        if args.sizes:
            print("scaling curve and memory:", flush=True)
            points = measure_scaling(args, datasets)
        k_points = {}
        if args.k_values:
            print(f"K sweep at {format_count(args.k_size)}:", flush=True)
            k_points = measure_k_sweep(args, datasets)
        fits = {}
        if args.fit_inits:
            print("full fits:", flush=True)
            fits = measure_full_fits(args, datasets)
        generation = {s: datasets.meta(s) for s in sorted(
            set(args.sizes) | ({args.k_size} if args.k_values else set())
            | ({args.fit_size} if args.fit_inits else set()))}
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    wall = time.perf_counter() - started

    n_features = args.n_items
    sections = [
        "The machine was shared with other work while these ran (see the load "
        "average); each figure is a median, each ratio comes from this run."]
    if points:
        sections += [
            "### Seconds per EM iteration (fused pass + M-step), K = "
            f"{K}\n\n" + scaling_table(args, points),
            "### Peak resident memory, one process per point\n\n"
        "Bound: 1.5 x (CSR bytes + n x K x 8) + 200 MB. The peaks include the "
        "interpreter, the loaded data and its validation (`ObservedData`). The fit's "
        "two phases are then run again apart in the same process (`initial_params` "
        "with 'random_from_data', then `run_em` for 3 iterations), each with the "
            "peak restarted, to show which one needs memory beyond the data.\n\n"
            + memory_table(args, points),
        ]
    if k_points:
        sections.append(
            f"### K sweep at {format_count(args.k_size)} ratings, float64\n\n"
            "One process per thread count; the K values take turns, one iteration "
            "each, in a rotating order.\n\n" + k_sweep_table(args, k_points))
    roofline = ("Streaming bandwidth (NumPy sum over "
                f"{args.bandwidth_mb} MB, median of 5): "
                + ", ".join(f"{n} thread(s) {gbs:.2f} GB/s"
                            for n, (gbs, _) in sorted(bandwidth.items())) + ".")
    if points:
        roofline = (f"### Roofline at {format_count(reference_size(args))} ratings\n\n"
                    + roofline + "\n\n" + roofline_table(args, points, bandwidth))
    sections.append(
        roofline + "\n\nPer-thread working set of the pass: one block per column holding "
        "its means and its two accumulators (x sums, counts), K padded:\n\n"
        + working_set_table(args, n_features))
    if fits:
        sections.append(
            f"### Full fit: GaussianMixture({K}, max_iter={args.fit_iterations}, tol=0, "
            f"n_threads={args.fit_threads}), float64\n\n" + full_fit_table(args, fits, points))
    sections.append("Data generation (one process per size): " + "; ".join(
        f"{format_count(s)}: {m['seconds']:.1f} s, peak RSS {m['peak_rss_mb']:.0f} MB"
        for s, m in generation.items()) + f". Wall time of the benchmark: {wall:.0f} s.")
    text = "\n\n".join(sections)
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_scale", text)
        print(f"\nappended to {args.markdown}")


if __name__ == "__main__":
    main()
