"""Compare the initialisations of GaussianMixture on synthetic ratings.

Method: ``fastem.datasets.make_ratings`` builds a rating matrix with planted
taste groups; 10% of its ratings (each independently, ``--heldout``) are
held out and the mixture is fitted on the rest, once per initialisation and
seed (``n_init=1``, so that every start is measured on its own). Each fit is
scored by

- the held-out log-likelihood per held-out rating,
  ``sum_u [log p(x_u, all) - log p(x_u, train)] / m``, which is the exact
  ``log p(x_heldout | x_train)`` of the mixture (missing coordinates are
  marginalised out);
- the held-out RMSE of ``predict_entries`` (posterior means) against the
  held-out ratings;
- the training log-likelihood per training rating, the EM iterations and the
  wall time of the fit (initialisation included).

The table reports the mean over the seeds, with the worst seed in brackets.

Example::

    PYTHONPATH=. python benchmarks/bench_init.py --seeds 5
"""

import argparse
import time
from pathlib import Path

import numpy as np

from _common import append_markdown, markdown_table, print_header
from fastem import GaussianMixture
from fastem._init import INIT_METHODS
from fastem._selection import heldout_log_likelihood, split_entries
from fastem.datasets import make_ratings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-users", type=int, default=20_000)
    parser.add_argument("--n-items", type=int, default=2_000)
    parser.add_argument("--n-ratings", type=int, default=1_000_000)
    parser.add_argument("--groups", type=int, default=12,
                        help="planted taste groups (default: %(default)s)")
    parser.add_argument("--components", type=int, default=12,
                        help="K of the fitted mixtures (default: %(default)s)")
    parser.add_argument("--covariance-type", choices=["spherical", "diag"],
                        default="spherical")
    parser.add_argument("--inits", nargs="+", choices=INIT_METHODS,
                        default=list(INIT_METHODS))
    parser.add_argument("--seeds", type=int, default=3,
                        help="fits per initialisation, random_state 0..seeds-1")
    parser.add_argument("--heldout", type=float, default=0.1,
                        help="share of the ratings held out (default: %(default)s)")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--data-seed", type=int, default=0,
                        help="seed of the ratings and of the split")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result table and the command line to FILE")
    return parser.parse_args(argv)


def evaluate(init, seed, full, train, heldout, args):
    rows, cols, values = heldout
    model = GaussianMixture(args.components, covariance_type=args.covariance_type,
                            init_params=init, random_state=seed, tol=args.tol,
                            max_iter=args.max_iter, n_threads=args.threads)
    start = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - start
    predicted = model.predict_entries(train, rows, cols)
    return {
        "heldout_ll": heldout_log_likelihood(model, full, train) / values.shape[0],
        "rmse": float(np.sqrt(np.mean((predicted - values) ** 2))),
        "train_ll": model.log_likelihood_ / train.nnz,
        "n_iter": model.n_iter_,
        "seconds": seconds,
    }


def summary(results, key, fmt, worst):
    values = np.array([r[key] for r in results])
    return f"{fmt.format(values.mean())} ({fmt.format(worst(values))})"


def main(argv=None):
    args = parse_args(argv)
    print_header("GaussianMixture initialisations on synthetic ratings", {
        "data": f"make_ratings({args.n_users}, {args.n_items}, {args.n_ratings}, "
                f"n_groups={args.groups}, random_state={args.data_seed})",
        "model": f"K={args.components}, covariance_type={args.covariance_type}, "
                 f"tol={args.tol}, max_iter={args.max_iter}",
        "held out": f"{args.heldout:.0%} of the ratings", "seeds": args.seeds,
    })
    full = make_ratings(args.n_users, args.n_items, args.n_ratings,
                        n_groups=args.groups, random_state=args.data_seed)
    train, heldout = split_entries(full, args.heldout, args.data_seed)
    rows, cols, values = heldout
    column_sums = np.bincount(train.indices, weights=train.data, minlength=train.n_features)
    column_counts = np.bincount(train.indices, minlength=train.n_features)
    column_means = np.divide(column_sums, column_counts,
                             out=np.full(train.n_features, train.data.mean()),
                             where=column_counts > 0)
    baseline = np.sqrt(np.mean((column_means[cols] - values) ** 2))
    print(f"{train.nnz} ratings fitted, {values.shape[0]} held out; held-out RMSE of "
          f"the item means: {baseline:.4f}\n")
    table = []
    for init in args.inits:
        results = [evaluate(init, seed, full, train, heldout, args)
                   for seed in range(args.seeds)]
        for seed, r in enumerate(results):
            print(f"{init:>16} seed {seed}: held-out LL {r['heldout_ll']:.5f}, RMSE "
                  f"{r['rmse']:.5f}, train LL {r['train_ll']:.5f}, {r['n_iter']} "
                  f"iterations, {r['seconds']:.2f} s", flush=True)
        table.append([
            init,
            summary(results, "heldout_ll", "{:.5f}", np.min),
            summary(results, "rmse", "{:.5f}", np.max),
            summary(results, "train_ll", "{:.5f}", np.min),
            summary(results, "n_iter", "{:.0f}", np.max),
            summary(results, "seconds", "{:.2f}", np.max),
        ])
    headers = ["init_params", "held-out LL per rating", "held-out RMSE",
               "train LL per rating", "EM iterations", "fit time (s)"]
    text = markdown_table(headers, table)
    print("\nmean over seeds (worst seed)\n")
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "Initialisations on synthetic ratings", text)


if __name__ == "__main__":
    main()
