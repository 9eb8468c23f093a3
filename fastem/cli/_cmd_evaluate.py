"""``fastem evaluate`` and ``fastem demo``: score held-out ratings next to baselines.

Both fit the recommender (its defaults, seeded by --seed) and a plain mixture
of K components on the kept ratings.
"""

import sys
import time

import numpy as np

from .. import __version__, backend_info
from ._evaluate import evaluate_holdout, recommender_name
from ._format import format_table
from ._output import CommandError
from ._progress import RecommenderProgress
from ._shared import (check_k, describe, fit_line, load_ratings, make_model,
                      make_recommender, recommender_line)

__all__ = ["run_evaluate", "run_demo", "DEMO_RATINGS"]

#: The options of ``make_ratings`` that make the demo's ratings look like real
#: ones: strong user and item offsets, weaker tastes, noisy ratings.
DEMO_RATINGS = {"user_sd": 0.5, "taste_sd": 0.25, "noise_sd": 0.8}


def _print_evaluation(evaluation, test_fraction, seed, rank=False):
    held = evaluation.heldout.values.shape[0]
    print(f"held out {test_fraction:.0%} of the ratings at random (seed {seed}): "
          f"{evaluation.train.nnz:,} to fit, {held:,} to score")
    print(fit_line(evaluation.model, evaluation.fit_seconds, "fitted the rest with"))
    print(f"held-out log-likelihood under the mixture: "
          f"{evaluation.heldout_log_likelihood:.4f} per rating")
    print(recommender_line(evaluation.recommender, evaluation.recommender_seconds,
                           "fitted the recommender on the rest"))
    print()
    headers = ["predictor of the held-out ratings", "RMSE", "MAE"]
    rows = [[name, f"{rmse:.4f}", f"{mae:.4f}"] for name, rmse, mae in evaluation.scores]
    if rank:
        # 1 for the lowest RMSE.
        order = np.argsort([rmse for _, rmse, _ in evaluation.scores], kind="stable")
        for place, k in enumerate(order, 1):
            rows[k].append(str(place))
        headers.append("rank")
    print(format_table(headers, rows))


def _evaluate(data, args, rank=False):
    """Fit on all but a held-out share of ``data`` with the options' models, and report."""
    model, progress = make_model(args, args.k)
    recommender = make_recommender(args)
    def follow():
        return RecommenderProgress(sys.stderr, n_restarts=recommender.n_restarts)

    evaluation = evaluate_holdout(data, model, args.test_fraction, args.seed,
                                  progress=progress, recommender=recommender,
                                  recommender_progress=None if args.quiet else follow)
    _print_evaluation(evaluation, args.test_fraction, args.seed, rank)
    return evaluation


def run_evaluate(args):
    """Run ``fastem evaluate`` with the parsed ``args``; the exit status."""
    start = time.perf_counter()
    ratings = load_ratings(args.data, args.format, args.duplicates)
    print(f"read {describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    check_k(args.k, ratings)
    _evaluate(ratings.to_observed(), args)
    return 0


def _backend_line():
    info = backend_info()
    if info["backend"] == "python":
        return "pure NumPy backend"
    threads = "OpenMP" if info["openmp"] else "no OpenMP"
    return (f"compiled kernels ({info['simd']} build, {threads}, "
            f"{info['max_threads']} threads)")


def run_demo(args):
    """Run ``fastem demo`` with the parsed ``args``; the exit status."""
    from ..datasets import make_ratings

    print(f"fastem {__version__}, {_backend_line()}")
    start = time.perf_counter()
    data = make_ratings(args.n_users, args.n_items, args.n_ratings, n_groups=args.groups,
                        random_state=args.seed, **DEMO_RATINGS)
    print(f"generated synthetic ratings: {data.n_samples:,} users x {data.n_features:,} "
          f"items, {data.nnz:,} ratings 1..5 with user and item offsets, "
          f"{args.groups} taste groups and a long tail of rarely rated items "
          f"(seed {args.seed}, {time.perf_counter() - start:.2f} s)")
    if args.k > data.n_samples:
        raise CommandError(f"-k {args.k} is more than the {data.n_samples:,} users")
    evaluation = _evaluate(data, args, rank=True)
    held = evaluation.heldout
    shown = np.sort(np.random.RandomState(args.seed).permutation(held.values.shape[0])[:8])
    recommender = evaluation.predictions[recommender_name(evaluation.recommender)]
    biases = evaluation.predictions["user + item biases"]
    rows = [(str(held.rows[p]), str(held.cols[p]), f"{held.values[p]:g}",
             f"{recommender[p]:.2f}", f"{biases[p]:.2f}") for p in shown]
    print()
    print("a few held-out ratings and their predictions from the rest:")
    print(format_table(["user", "item", "rating", "recommender", "user + item biases"],
                       rows, align=[">"] * 5))
    return 0
