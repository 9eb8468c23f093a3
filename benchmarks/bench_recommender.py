"""The recommender at scale: seconds and peak memory of a default fit.

Method: ``fastem.datasets.make_ratings`` draws ``--ratings`` ratings (default
20M) on the Netflix Prize shape (480,189 x 17,770). ``fastem.Recommender``
with its defaults (both sides, 10 restarts each) and ``--threads`` threads is
fitted on the CSR matrix, timed from the call to its return, with its steps
timed by its progress callback. Peak memory is the process's peak resident
set (``VmHWM``), reset after the data are made, against the bound
``1.5 x (CSR bytes + n_users x K x 8) + 200 MB``.

Example::

    PYTHONPATH=. python benchmarks/bench_recommender.py --ratings 20M --threads 2
"""

import argparse
import time
from pathlib import Path

from _common import (append_markdown, current_rss_mb, markdown_table, parse_count,
                     print_header, process_peak_rss_mb, reset_peak_rss)

import fastem
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS, make_ratings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", default="20M")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, metavar="FILE")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    n_ratings = parse_count(args.ratings)
    print_header("fastem recommender at scale", {
        "data": f"make_ratings({NETFLIX_N_USERS:,}, {NETFLIX_N_ITEMS:,}, {n_ratings:,}, "
                f"random_state={args.seed})", "threads": str(args.threads)})
    data = make_ratings(NETFLIX_N_USERS, NETFLIX_N_ITEMS, n_ratings, random_state=args.seed)
    matrix = data.to_csr()
    csr_mb = (data.data.nbytes + data.indices.nbytes + data.indptr.nbytes) / 2**20
    model = fastem.Recommender(random_state=0, n_threads=args.threads)
    bound = 1.5 * (csr_mb + NETFLIX_N_USERS * model.n_components * 8 / 2**20) + 200
    loaded = current_rss_mb()
    reset_peak_rss()
    steps = []
    start = time.perf_counter()

    def progress(step, n_steps, label):
        steps.append((label, time.perf_counter() - start, current_rss_mb()))
        print(f"  {step}/{n_steps} {label}: {steps[-1][1]:.1f} s, RSS "
              f"{steps[-1][2]:.0f} MB", flush=True)

    model.fit(matrix, progress=progress)
    seconds = time.perf_counter() - start
    peak = process_peak_rss_mb()
    rows = [[f"{NETFLIX_N_USERS:,} x {NETFLIX_N_ITEMS:,}", f"{n_ratings:,}", args.threads,
             f"{seconds:.1f}", f"{steps[0][1]:.1f}", f"{csr_mb:.0f}", f"{loaded:.0f}",
             f"{peak:.0f}", f"{peak - loaded:.0f}", f"{bound:.0f}"]]
    text = markdown_table(["shape", "ratings", "threads", "fit s", "offsets s",
                           "CSR MB", "RSS before fit MB", "peak RSS MB",
                           "peak above the data MB", "bound MB"], rows)
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_recommender", text)


if __name__ == "__main__":
    main()
