"""``fastem bench``: print the time of one EM iteration per backend and thread count."""

import time

import numpy as np

from .. import __version__, backend_info
from ._bench import available_backends, bench_params, configurations, time_iteration
from ._format import format_table
from ._output import CommandError, warn

__all__ = ["run"]


def run(args):
    """Run ``fastem bench`` with the parsed ``args``; the exit status."""
    from ..datasets import make_ratings

    backends, skipped = available_backends(args.backends)
    for name, reason in skipped.items():
        warn(f"skipping backend {name!r}: {reason}")
    if not backends:
        raise CommandError("no backend to time")
    print(f"fastem {__version__} kernel benchmark: one EM iteration (fused pass + "
          f"M-step), median of {args.repeats} after 1 warm-up")
    start = time.perf_counter()
    data = make_ratings(args.n_users, args.n_items, args.n_ratings, random_state=args.seed,
                        dtype=np.dtype(args.dtype))
    print(f"data: make_ratings({data.n_samples:,} users x {data.n_features:,} items, "
          f"{data.nnz:,} ratings, seed {args.seed}), {args.dtype}, generated in "
          f"{time.perf_counter() - start:.2f} s")
    if args.k > data.n_samples:
        raise CommandError(f"-k {args.k} is more than the {data.n_samples:,} users")
    kernels = ""
    if "cython" in backends:
        info = backend_info("cython")
        kernels = (f"; compiled kernels: {info['simd']} build, "
                   f"{'OpenMP' if info['openmp'] else 'no OpenMP'}, "
                   f"{info['max_threads']} threads available")
    print(f"model: K = {args.k}, {args.covariance}{kernels}")
    params = bench_params(data, args.k, args.covariance, args.seed)
    rows, reference = [], None
    for backend, n_threads in configurations(backends, args.threads):
        seconds, _ = time_iteration(data, params, backend, n_threads, args.repeats)
        if backend == "python":
            reference = seconds
        ns = seconds / (data.nnz * args.k) * 1e9
        speedup = f"{reference / seconds:.1f}x" if reference else "-"
        rows.append((backend, str(n_threads), f"{seconds:.4f}", f"{ns:.2f}", speedup))
    print()
    print(format_table(["backend", "threads", "s / iteration", "ns / (rating x K)",
                        "vs python"], rows))
    return 0
