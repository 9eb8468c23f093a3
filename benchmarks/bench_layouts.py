"""Two ways to arrange a pass's work, each against today's pass, in turns.

Method: ``fastem.datasets.make_ratings`` draws ``--ratings`` ratings on the
Netflix Prize shape (480,189 x 17,770); every figure is the median of
``--turns`` turns in which the two contenders run one after the other, on
``--threads`` threads, with K = ``--components``.

1. **By rows or by columns** on the items' side of the recommender (the
   transposed matrix: 17,770 rows, 480,189 columns): ``fused_pass`` over the
   rows of its CSR copy against ``column_fused_pass`` over the users' CSR.
2. **By rows or by row groups** on the users' side (the plain mixture's
   matrix, 480,189 x 17,770), diag model: the compiled ``fused_pass`` row by
   row (``group_rows=0``) against its pass by groups of ``GROUP_ROWS`` rows,
   for each K of ``--group-components``; "(taken)" marks what
   ``pass_group_rows`` chooses.
3. **Restarts sharing a pass**: ``--restarts`` separate passes of K
   components against one pass of restarts x K components (each entry's
   index and value read once for all of them; the bound of what restarts
   advanced together can gain, before any per-restart normalisation).

Example::

    PYTHONPATH=. python benchmarks/bench_layouts.py --threads 1
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from _common import append_markdown, markdown_table, parse_count, print_header

from fastem import as_observed
from fastem._backend import get_backend
from fastem._pass import COURSE_WEIGHT_FLOOR, PassBuffers, SufficientStats, log_weights
from fastem._validation import Params
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS, make_ratings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", default="20M")
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--group-components", type=int, nargs="+", default=[12])
    parser.add_argument("--parts", nargs="+", default=["items", "groups", "restarts"],
                        choices=["items", "groups", "restarts"])
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--markdown", type=Path, metavar="FILE")
    return parser.parse_args(argv)


def params(n_components, n_features, rng):
    return Params(rng.normal(0.0, 0.5, size=(n_components, n_features)),
                  np.full(n_components, 1.2), np.full(n_components, 1.0 / n_components))


def compiled_pass(data, params, n_threads, group_rows):
    """A compiled fused pass over ``data`` reading its entries as ``group_rows`` says."""
    kernels = get_backend("cython")
    n_components = params.means.shape[0]
    diag = np.ndim(params.variances) == 2
    post, row_loglik = np.empty((data.n_samples, n_components)), np.empty(data.n_samples)
    stats = SufficientStats(n_components, data.n_features, diag)
    workspace = np.empty(kernels.workspace_size(n_components, data.n_features, n_threads,
                                                diag))
    if group_rows is None:
        group_rows = kernels.pass_group_rows(data.indptr, data.n_features, n_components,
                                             diag)
    weights = log_weights(params.weights, COURSE_WEIGHT_FLOOR)

    def run():
        kernels.fused_pass(data.data, data.indices, data.indptr, params.means,
                           params.variances, weights, False, post, row_loglik,
                           *stats.arrays(), n_threads, workspace, group_rows=group_rows)
    return run, group_rows


def in_turns(contenders, turns):
    """Median seconds of each contender, run in turns after one warm-up each."""
    times = {name: [] for name in contenders}
    for run in contenders.values():
        run()
    for _ in range(turns):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def main(argv=None):
    args = parse_args(argv)
    n_ratings = parse_count(args.ratings)
    K, R, threads = args.components, args.restarts, args.threads
    print_header("pass layouts", {"data": f"make_ratings({NETFLIX_N_USERS:,}, "
                                          f"{NETFLIX_N_ITEMS:,}, {n_ratings:,})",
                                  "threads": str(threads), "K": str(K)})
    by_user = make_ratings(NETFLIX_N_USERS, NETFLIX_N_ITEMS, n_ratings, random_state=0)
    rng = np.random.RandomState(0)
    rows = []

    if "items" in args.parts:
        by_item = as_observed(by_user.to_csr().T.tocsr())
        items = params(K, by_item.n_features, rng)
        row_pass = PassBuffers(K, by_item.n_features, backend="cython", n_threads=threads)
        column_pass = PassBuffers(K, by_item.n_features, backend="cython",
                                  n_threads=threads, n_rows=by_item.n_samples)
        counts = by_item.row_counts
        seconds = in_turns({
            "rows": lambda: row_pass.fused_pass(by_item, items),
            "columns": lambda: column_pass.column_pass(by_user, counts, items)}, args.turns)
        for name in ("rows", "columns"):
            rows.append([f"items' side ({by_item.n_samples:,} x {by_item.n_features:,}), "
                         f"by {name}", K, f"{seconds[name]:.3f}",
                         f"{seconds[name] / (n_ratings * K) * 1e9:.2f}",
                         f"{seconds[name] / seconds['rows']:.2f}"])
        del by_item, row_pass, column_pass

    kernels = get_backend("cython")
    for G in args.group_components if "groups" in args.parts else ():
        diag_params = params(G, by_user.n_features, rng)._replace(
            variances=np.full((G, by_user.n_features), 1.2))
        group_rows = kernels.GROUP_ROWS
        chosen = kernels.pass_group_rows(by_user.indptr, by_user.n_features, G, diag=True)
        by_rows, _ = compiled_pass(by_user, diag_params, threads, 0)
        by_groups, _ = compiled_pass(by_user, diag_params, threads, group_rows)
        seconds = in_turns({"rows": by_rows, "groups": by_groups}, args.turns)
        for name, label in (("rows", "by rows"),
                            ("groups", f"by groups of {group_rows:,} rows")):
            taken = " (taken)" if (chosen > 0) == (name == "groups") else ""
            rows.append([f"users' side, diag, {label}{taken}", G, f"{seconds[name]:.3f}",
                         f"{seconds[name] / (n_ratings * G) * 1e9:.2f}",
                         f"{seconds[name] / seconds['rows']:.2f}"])

    if "restarts" in args.parts:
        restarts(by_user, K, R, threads, rng, args.turns, rows, n_ratings)
    text = markdown_table(["pass", "components", "s (median)", "ns / (entry x K)",
                           "vs first of its group"], rows)
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_layouts.py", text)


def restarts(by_user, K, R, threads, rng, turns, rows, n_ratings):
    """Rows of the table: R separate passes against one pass of R x K components."""
    one, stacked = params(K, by_user.n_features, rng), params(R * K, by_user.n_features, rng)
    single, _ = compiled_pass(by_user, one, threads, None)
    shared, _ = compiled_pass(by_user, stacked, threads, None)
    seconds = in_turns({
        "separate": lambda: [single() for _ in range(R)], "shared": shared}, turns)
    rows.append([f"users' side, {R} separate passes", f"{R} x {K}",
                 f"{seconds['separate']:.3f}",
                 f"{seconds['separate'] / (n_ratings * R * K) * 1e9:.2f}", "1.00"])
    rows.append([f"users' side, one pass of {R * K} components", R * K,
                 f"{seconds['shared']:.3f}",
                 f"{seconds['shared'] / (n_ratings * R * K) * 1e9:.2f}",
                 f"{seconds['shared'] / seconds['separate']:.2f}"])


if __name__ == "__main__":
    main()
