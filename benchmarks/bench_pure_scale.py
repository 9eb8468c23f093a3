"""Time and memory of the pure NumPy backend at Netflix-Prize scale.

Generates synthetic ratings on the Netflix Prize shape (480,189 x 17,770, 20
million ratings by default) with ``fastem.datasets.make_ratings`` and times
one EM iteration (fused pass + M-step) of the pure backend, with K = 12.
Reports the size of the CSR arrays and the peak resident memory of the
process, which covers the data generation and the iterations.

Example::

    PYTHONPATH=. python benchmarks/bench_pure_scale.py
"""

import argparse
from pathlib import Path
from time import perf_counter

import numpy as np

from _common import (append_markdown, markdown_table, peak_rss_mb, print_header,
                     synthetic_params, timeit_median)
from fastem._em import mstep
from fastem._pass import PassBuffers
from fastem._validation import check_params
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS, make_ratings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-ratings", type=int, default=20_000_000,
                        help="ratings in the synthetic matrix (default: %(default)s)")
    parser.add_argument("--components", type=int, default=12,
                        help="K (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed iterations (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="untimed iterations first (default: %(default)s)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data and of the initial means")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result table and the command line to FILE")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print_header("fastem pure backend at scale", {
        "backend": "python (pure NumPy/SciPy, serial)",
        "data": f"make_ratings({NETFLIX_N_USERS:,}, {NETFLIX_N_ITEMS:,}, "
                f"{args.n_ratings:,}, random_state={args.seed}, dtype={args.dtype})",
        "K": str(args.components),
        "repeats": f"{args.repeats} (median, after {args.warmup} warm-up)",
    })
    rss_start = peak_rss_mb()

    start = perf_counter()
    data = make_ratings(NETFLIX_N_USERS, NETFLIX_N_ITEMS, args.n_ratings,
                        random_state=args.seed, dtype=np.dtype(args.dtype))
    generation_seconds = perf_counter() - start
    rss_generated = peak_rss_mb()
    csr_mb = (data.data.nbytes + data.indices.nbytes + data.indptr.nbytes) / 2**20
    print(f"generated {data.nnz:,} ratings in {generation_seconds:.1f} s; "
          f"CSR {csr_mb:.0f} MB; peak RSS so far {rss_generated:.0f} MB", flush=True)

    params = check_params(synthetic_params(data, args.components, args.seed), data.n_features)
    n_components = params.means.shape[0]
    buffers = PassBuffers(n_components, data.n_features, backend="python")

    def iteration():
        buffers.fused_pass(data, params)
        mstep(buffers.stats, params.means, params.variances, data.n_samples)

    seconds, times = timeit_median(iteration, args.repeats, warmup=args.warmup)
    rss_end = peak_rss_mb()
    ns_per = seconds / (data.nnz * n_components) * 1e9
    print("iteration times (s): " + ", ".join(f"{t:.2f}" for t in times))

    rows = [[f"{data.n_samples:,} x {data.n_features:,}", f"{data.nnz:,}", n_components,
             args.dtype, f"{generation_seconds:.1f}", f"{csr_mb:.0f}", f"{seconds:.2f}",
             f"{ns_per:.1f}", f"{rss_start:.0f}", f"{rss_generated:.0f}", f"{rss_end:.0f}"]]
    headers = ["shape", "observed", "K", "dtype", "generation (s)", "CSR (MB)",
               "s / iteration", "ns / (entry x K)", "peak RSS at start (MB)",
               "after generation (MB)", "after iterations (MB)"]
    text = markdown_table(headers, rows)
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_pure_scale", text)
        print(f"\nappended to {args.markdown}")


if __name__ == "__main__":
    main()
