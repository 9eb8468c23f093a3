"""Command line: ``fastem demo`` (also ``python -m fastem``)."""

import argparse
import sys
import time

import numpy as np

from . import __version__
from ._backend import backend_info
from ._data import ObservedData
from ._em import Params, estep, run_em
from .datasets import make_ratings


def _split_ratings(data, test_fraction, rng):
    """Hold out a random fraction of the observed entries."""
    held_out = rng.random(data.nnz) < test_fraction
    rows = np.repeat(np.arange(data.n_samples), np.diff(data.indptr))
    kept_counts = np.bincount(rows[~held_out], minlength=data.n_samples)
    indptr = np.zeros(data.n_samples + 1, dtype=data.indptr.dtype)
    np.cumsum(kept_counts, out=indptr[1:])
    train = ObservedData(data.data[~held_out], data.indices[~held_out], indptr,
                         data.n_features, copy=False)
    test = (rows[held_out], data.indices[held_out], data.data[held_out])
    return train, test


def _initial_params(data, n_components, rng):
    """K random users as means, their missing items filled by item means."""
    column_sums = np.bincount(data.indices, weights=data.data, minlength=data.n_features)
    column_counts = np.bincount(data.indices, minlength=data.n_features)
    global_mean = data.data.mean()
    item_means = np.where(column_counts > 0,
                          column_sums / np.maximum(column_counts, 1), global_mean)
    means = np.tile(item_means, (n_components, 1))
    for j, u in enumerate(rng.choice(data.n_samples, n_components, replace=False)):
        start, end = data.indptr[u], data.indptr[u + 1]
        means[j, data.indices[start:end]] = data.data[start:end]
    variances = np.full(n_components, data.data.var())
    weights = np.full(n_components, 1.0 / n_components)
    return Params(means, variances, weights), item_means


def _demo(args):
    rng = np.random.default_rng(args.seed)
    print(f"fastem {__version__}: {backend_info(args.backend)}")
    t0 = time.perf_counter()
    ratings = make_ratings(args.n_users, args.n_items, args.n_ratings,
                           n_groups=args.k, random_state=args.seed)
    train, (test_rows, test_cols, test_values) = _split_ratings(ratings, 0.1, rng)
    print(f"synthetic ratings: {ratings.n_samples} users x {ratings.n_features} items, "
          f"{ratings.nnz} ratings ({time.perf_counter() - t0:.1f} s); "
          f"{train.nnz} to fit, {test_values.size} held out")
    params, item_means = _initial_params(train, args.k, rng)
    t0 = time.perf_counter()
    result = run_em(train, params, max_iter=args.max_iter, backend=args.backend,
                    n_threads=args.threads)
    seconds = time.perf_counter() - t0
    status = "converged" if result.converged else "stopped at max_iter"
    print(f"EM, K = {args.k}: {result.n_iter} iterations ({status}), "
          f"log-likelihood {result.log_likelihood:.6f}, {seconds:.2f} s "
          f"({seconds / result.n_iter * 1e3:.1f} ms per iteration)")
    post = result.post
    predicted = np.einsum("nk,kn->n", post[test_rows], result.params.means[:, test_cols])
    rmse = lambda guess: np.sqrt(np.mean((guess - test_values) ** 2))  # noqa: E731
    print("held-out RMSE: mixture {:.4f} | item mean {:.4f} | global mean {:.4f}".format(
        rmse(predicted), rmse(item_means[test_cols]), rmse(train.data.mean())))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastem",
        description="Fast, exact EM for Gaussian mixtures on partially observed data.")
    parser.add_argument("--version", action="version", version=f"fastem {__version__}")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo", help="fit synthetic ratings and score held-out ones (the default)",
        description="Fit a mixture to synthetic 1..5 ratings with planted taste "
                    "groups, then predict 10%% of the ratings held out.")
    demo.add_argument("--n-users", type=int, default=20_000)
    demo.add_argument("--n-items", type=int, default=2_000)
    demo.add_argument("--n-ratings", type=int, default=1_000_000)
    demo.add_argument("-k", type=int, default=12, help="number of components")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--max-iter", type=int, default=200)
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--backend", choices=["cython", "python"], default=None)
    demo.set_defaults(handler=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["demo"] + argv
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
