"""Recommendation quality on real ratings: fastem's recommender against the baselines.

Method: the ratings of ``--data`` (default: FilmTrust, ``../shared/data/filmtrust``,
``user item rating`` lines) are split at random into 80% to fit and 20% to
score, with ``numpy.random.RandomState(seed).rand(n) < 0.2`` for each seed of
``--seeds`` (default 42-46). A (user, item) pair given twice keeps its last
rating (the count is printed). On every split, in the same run:

- ``fastem.Recommender()`` with its defaults (both sides), and with
  ``sides='users'`` and ``sides='items'``;
- the plain mixture of the course's rules: ``GaussianMixture(K, n_init=3)``
  for each K of ``--plain-k``, its predictions the posterior means
  (``predict_entries``), clipped to the rating range;
- the offsets alone: the recommender's ``mu + b_u + b_i``, clipped;
- where ``scikit-surprise`` is installed (a benchmark-only dependency):
  its ``BaselineOnly``, ``SVD``, ``SVDpp`` and item-based ``KNNBaseline``
  (pearson_baseline similarity), with their defaults and ``random_state=0``,
  fitted on the same 80% and scored on the same 20% (Surprise clips to the
  rating scale).

Reported: RMSE and MAE on the held-out ratings and the fit time, per split
and their mean.

Example::

    PYTHONPATH=. python benchmarks/bench_quality.py --markdown benchmarks/RESULTS.md
"""

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from _common import append_markdown, markdown_table, print_header

import fastem

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "filmtrust" / \
    "ratings.txt"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="'user item rating' lines (default: FilmTrust)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44, 45, 46])
    parser.add_argument("--plain-k", type=int, nargs="+", default=[2],
                        help="K of the plain mixture (default: %(default)s)")
    parser.add_argument("--no-surprise", action="store_true",
                        help="leave out Surprise's algorithms")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result tables and the command line to FILE")
    return parser.parse_args(argv)


def read_ratings(path):
    """(users, items, ratings) of a 'user item rating' file; the last of a pair kept."""
    raw = np.loadtxt(path, ndmin=2)
    users, items, ratings = raw[:, 0].astype(np.int64), raw[:, 1].astype(np.int64), raw[:, 2]
    keys = users * (items.max() + 1) + items
    # The last line of each pair: the first in reversed order.
    _, first_reversed = np.unique(keys[::-1], return_index=True)
    keep = np.sort(keys.shape[0] - 1 - first_reversed)
    return users[keep], items[keep], ratings[keep], int(keys.shape[0] - keep.shape[0])


def _timed(fit):
    start = time.perf_counter()
    result = fit()
    return result, time.perf_counter() - start


def fastem_predictors(train, test, plain_k):
    """{name: (predictions of the test pairs, fit seconds)} of fastem's predictors."""
    users, items, ratings = train
    out = {}
    for name, settings in (("fastem Recommender (defaults, both sides)", {}),
                           ("fastem Recommender, users' side only", {"sides": "users"}),
                           ("fastem Recommender, items' side only", {"sides": "items"})):
        model, seconds = _timed(lambda: fastem.Recommender(random_state=0, **settings)
                                .fit_triples(users, items, ratings))
        out[name] = (model.predict(test[0], test[1]), seconds)
        if not settings:
            offsets = model
    # The offsets of the fit: mu + b_u + b_i, clipped.
    rows = offsets._positions(test[0], offsets.user_ids_)
    cols = offsets._positions(test[1], offsets.item_ids_)
    base = np.full(rows.shape[0], offsets.global_mean_)
    base[rows >= 0] += offsets.user_bias_[rows[rows >= 0]]
    base[cols >= 0] += offsets.item_bias_[cols[cols >= 0]]
    out["offsets mu + b_u + b_i (regularised, clipped)"] = (
        np.clip(base, *offsets.rating_range_), float("nan"))
    user_ids, u = np.unique(users, return_inverse=True)
    item_ids, i = np.unique(items, return_inverse=True)
    import scipy.sparse as sp
    matrix = sp.csr_matrix((ratings, (u, i)), shape=(user_ids.shape[0], item_ids.shape[0]))
    test_u = np.searchsorted(user_ids, test[0])
    test_i = np.searchsorted(item_ids, test[1])
    known = (test_u < user_ids.shape[0]) & (test_i < item_ids.shape[0])
    known[known] = (user_ids[test_u[known]] == test[0][known]) & (
        item_ids[test_i[known]] == test[1][known])
    for k in plain_k:
        def fit_plain(k=k):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastem.ConvergenceWarning)
                return fastem.GaussianMixture(k, n_init=3, random_state=0).fit(matrix)
        model, seconds = _timed(fit_plain)
        predicted = np.full(test[0].shape[0], ratings.mean())
        predicted[known] = model.predict_entries(matrix, test_u[known], test_i[known])
        out[f"plain mixture, course rules (K = {k}, best of 3)"] = (
            np.clip(predicted, ratings.min(), ratings.max()), seconds)
    return out


def surprise_predictors(train, test):
    """{name: (predictions, fit seconds)} of Surprise's algorithms; {} without it."""
    try:
        import pandas as pd
        from surprise import SVD, BaselineOnly, Dataset, KNNBaseline, Reader, SVDpp
    except ImportError as exc:
        print(f"Surprise left out: {exc}")
        return {}
    users, items, ratings = train
    frame = pd.DataFrame({"u": users, "i": items, "r": ratings})
    reader = Reader(rating_scale=(float(ratings.min()), float(ratings.max())))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
    algorithms = {
        "Surprise BaselineOnly": lambda: BaselineOnly(verbose=False),
        "Surprise SVD (defaults)": lambda: SVD(random_state=0),
        "Surprise SVD++ (defaults)": lambda: SVDpp(random_state=0),
        "Surprise KNNBaseline (item-based, pearson_baseline)": lambda: KNNBaseline(
            sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False),
    }
    out = {}
    for name, make in algorithms.items():
        algorithm = make()
        _, seconds = _timed(lambda: algorithm.fit(trainset))
        predicted = np.array([algorithm.predict(u, i).est
                              for u, i in zip(test[0].tolist(), test[1].tolist())])
        out[name] = (predicted, seconds)
    return out


def main(argv=None):
    args = parse_args(argv)
    users, items, ratings, dropped = read_ratings(args.data)
    extra = {"data": f"{args.data} ({ratings.shape[0]:,} ratings, "
                     f"{np.unique(users).shape[0]:,} users, {np.unique(items).shape[0]:,} "
                     f"items; {dropped} repeated pair(s) dropped, the last kept)",
             "splits": f"80/20 at random, seeds {' '.join(map(str, args.seeds))}"}
    print_header("fastem recommendation quality", extra)
    results = {}
    for seed in args.seeds:
        test = np.random.RandomState(seed).rand(ratings.shape[0]) < 0.2
        train = (users[~test], items[~test], ratings[~test])
        held = (users[test], items[test])
        predictors = fastem_predictors(train, held, args.plain_k)
        if not args.no_surprise:
            predictors.update(surprise_predictors(train, held))
        for name, (predicted, seconds) in predictors.items():
            errors = predicted - ratings[test]
            rmse = float(np.sqrt(np.mean(errors ** 2)))
            mae = float(np.mean(np.abs(errors)))
            results.setdefault(name, []).append((rmse, mae, seconds))
            print(f"seed {seed}  {name:55s} RMSE {rmse:.4f}  MAE {mae:.4f}  "
                  f"fit {seconds:.2f} s", flush=True)
    rows = []
    for name, runs in results.items():
        runs = np.array(runs)
        rows.append([name, f"{runs[:, 0].mean():.4f}", f"{runs[:, 1].mean():.4f}",
                     "-" if np.isnan(runs[:, 2]).all() else f"{np.nanmean(runs[:, 2]):.2f}",
                     " / ".join(f"{r:.4f}" for r in runs[:, 0])])
    rows.sort(key=lambda row: float(row[1]))
    text = markdown_table(["predictor", "RMSE (mean)", "MAE (mean)", "fit s (mean)",
                           "RMSE per split"], rows)
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_quality", text)
        print(f"\nappended to {args.markdown}")


if __name__ == "__main__":
    main()
