"""Where the time of one compiled fused pass goes: entries, rows and cache misses.

Two measurements, each in one process with the variants taking turns pass by
pass (median of ``--turns``), so that other work on the machine weighs on
all of them alike:

(a) Per entry and per row. The same number of entries (``--entries``) with
    random values 1..5 on ``--columns`` columns (a table of column blocks
    small enough to stay in the L2 cache), in rows of 10 to 336 distinct
    columns; a least-squares fit of ``seconds = a x entries + b x rows``
    gives the cost of an entry (its E-step distance and M-step update) and
    of a row (its posteriors, log-likelihood and component sums), for the
    E-step alone and for the fused pass.
(b) Cache misses at the Netflix Prize shape. ``make_ratings(480_189, 17_770,
    --ratings)`` as it is; the same entries with their column indices folded
    onto ``--columns`` columns (the same rows and values, the column blocks
    now in cache); and the same entries with every 4 consecutive rows merged
    into one (a quarter of the per-row work).

K = ``--components``, float64, ``--threads`` threads (default 1).

Example::

    PYTHONPATH=. python benchmarks/profile_pass.py --ratings 20M
"""

import argparse
import time
from pathlib import Path

import numpy as np

from _common import append_markdown, markdown_table, parse_count, print_header
from fastem._backend import get_backend
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS, make_ratings

ROW_LENGTHS = (10, 21, 42, 84, 168, 336)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", default="20M",
                        help="observed entries of (b) (default: %(default)s)")
    parser.add_argument("--entries", default="20M",
                        help="observed entries of (a) (default: %(default)s)")
    parser.add_argument("--columns", type=int, default=1000,
                        help="columns of the cache-resident data (default: %(default)s)")
    parser.add_argument("--components", type=int, default=12,
                        help="K (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="n_threads of the passes (default: %(default)s)")
    parser.add_argument("--turns", type=int, default=5,
                        help="timed passes of each variant (default: %(default)s)")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result tables and the command line to FILE")
    return parser.parse_args(argv)


class Pass:
    """One kind of pass (``fused`` or ``estep``) over fixed CSR arrays, with its buffers."""

    def __init__(self, kernels, kind, data, indices, indptr, n_features, n_components,
                 n_threads, seed=0):
        rng = np.random.default_rng(seed)
        n_samples = indptr.shape[0] - 1
        self.kernels, self.kind, self.n_threads = kernels, kind, n_threads
        self.arrays = (data, indices, indptr)
        self.n_entries, self.n_samples = data.shape[0], n_samples
        self.means = rng.uniform(1, 5, (n_components, n_features))
        self.variances = np.ones(n_components)
        self.log_weights = np.full(n_components, -np.log(n_components))
        self.post = np.empty((n_samples, n_components))
        self.row_loglik = np.empty(n_samples)
        self.stats = [np.empty(n_components), np.empty((n_components, n_features)),
                      np.empty((n_components, n_features)), np.empty(n_components)]
        self.workspace = np.empty(kernels.workspace_size(n_components, n_features, n_threads))

    def __call__(self):
        start = time.perf_counter()
        if self.kind == "fused":
            self.kernels.fused_pass(*self.arrays, self.means, self.variances,
                                    self.log_weights, False, self.post, self.row_loglik,
                                    *self.stats, self.n_threads, self.workspace)
        else:
            self.kernels.estep_pass(*self.arrays, self.means, self.variances,
                                    self.log_weights, self.post, self.row_loglik,
                                    self.n_threads)
        return time.perf_counter() - start


def in_turns(passes, turns):
    """Median seconds of each pass, the passes timed one after another ``turns`` times."""
    for one in passes:
        one()
    times = np.array([[one() for one in passes] for _ in range(turns)])
    return np.median(times, axis=0)


def distinct_columns(rng, n_samples, length, n_columns):
    """CSR column indices of ``n_samples`` rows of ``length`` distinct sorted columns."""
    # Steps of 1 to n_columns // length from a random start: the offsets stay
    # below n_columns, so the columns of a row are distinct modulo n_columns.
    steps = rng.integers(1, n_columns // length + 1, (n_samples, length))
    offsets = np.cumsum(steps, axis=1) - steps[:, :1]
    start = rng.integers(0, n_columns, (n_samples, 1))
    return np.sort((start + offsets) % n_columns, axis=1).astype(np.int32).ravel()


def entries_and_rows(kernels, args):
    """(a): per-entry and per-row costs from a sweep over row lengths."""
    n_entries = parse_count(args.entries)
    rng = np.random.default_rng(0)
    values = rng.integers(1, 6, n_entries).astype(np.float64)
    layouts = []
    for length in ROW_LENGTHS:
        if length > args.columns:
            raise SystemExit(f"--columns must be at least {length}")
        n_samples = n_entries // length
        indices = distinct_columns(rng, n_samples, length, args.columns)
        layouts.append((values[:indices.shape[0]], indices,
                        np.arange(0, indices.shape[0] + 1, length, dtype=np.int32)))
    rows = []
    for kind in ("estep", "fused"):
        passes = [Pass(kernels, kind, *layout, args.columns, args.components, args.threads)
                  for layout in layouts]
        seconds = in_turns(passes, args.turns)
        design = np.array([[p.n_entries, p.n_samples] for p in passes], dtype=float)
        (per_entry, per_row), *_ = np.linalg.lstsq(design, seconds, rcond=None)
        worst = np.max(np.abs(design @ [per_entry, per_row] / seconds - 1.0))
        for length, p, s in zip(ROW_LENGTHS, passes, seconds):
            rows.append([kind, length, f"{p.n_samples:,}", f"{s:.4f}",
                         f"{s / p.n_entries / args.components * 1e9:.3f}", "", "", ""])
        rows.append([kind, "fit", "", "", "", f"{per_entry * 1e9:.2f}",
                     f"{per_entry * 1e9 / args.components:.3f}",
                     f"{per_row * 1e9:.0f} (fit within {100 * worst:.0f}%)"])
        print(f"{kind}: {per_entry * 1e9:.2f} ns per entry "
              f"({per_entry * 1e9 / args.components:.3f} per entry and component), "
              f"{per_row * 1e9:.0f} ns per row", flush=True)
    return markdown_table(
        ["pass", "entries per row", "rows", "s / pass (median)", "ns / (entry x K)",
         "fitted ns / entry", "fitted ns / (entry x K)", "fitted ns / row"], rows)


def cache_misses(kernels, args):
    """(b): the Netflix shape as it is, folded onto few columns, and with rows merged."""
    X = make_ratings(NETFLIX_N_USERS, NETFLIX_N_ITEMS, parse_count(args.ratings),
                     random_state=0)
    data, indices, indptr = X.data, X.indices, X.indptr
    folded = (indices % args.columns).astype(indices.dtype)
    merged = np.append(indptr[:-1:4], indptr[-1])
    variants = {
        "as generated": (indices, indptr, X.n_features),
        f"columns folded onto {args.columns}": (folded, indptr, args.columns),
        "4 rows merged into 1": (indices, merged, X.n_features),
        "both": (folded, merged, args.columns),
    }
    passes = [Pass(kernels, "fused", data, ix, ip, nf, args.components, args.threads)
              for ix, ip, nf in variants.values()]
    seconds = in_turns(passes, args.turns)
    rows = []
    for name, p, s in zip(variants, passes, seconds):
        rows.append([name, f"{p.n_samples:,}", f"{p.n_entries / p.n_samples:.1f}",
                     f"{s:.4f}", f"{s / p.n_entries / args.components * 1e9:.3f}",
                     f"{s / seconds[0]:.2f}"])
        print(f"{name}: {s:.4f} s", flush=True)
    return markdown_table(
        ["data", "rows", "entries per row", "s / pass (median)", "ns / (entry x K)",
         "time / as generated"], rows)


def main(argv=None):
    args = parse_args(argv)
    kernels = get_backend("cython")
    print_header("where the time of a fused pass goes", {
        "K": str(args.components), "threads": str(args.threads), "turns": str(args.turns)})
    a = entries_and_rows(kernels, args)
    print(a, "\n")
    b = cache_misses(kernels, args)
    print(b)
    if args.markdown:
        append_markdown(
            args.markdown, "Where the time of a fused pass goes",
            f"(a) {args.entries} entries with random values on {args.columns} columns, "
            f"rows of {ROW_LENGTHS[0]} to {ROW_LENGTHS[-1]} distinct columns, "
            f"K = {args.components}, "
            f"{args.threads} thread(s); fit of seconds = a x entries + b x rows:\n\n{a}\n\n"
            f"(b) make_ratings({NETFLIX_N_USERS:,}, {NETFLIX_N_ITEMS:,}, {args.ratings}), "
            f"fused pass, K = {args.components}, {args.threads} thread(s):\n\n{b}\n")


if __name__ == "__main__":
    main()
