"""``fastem evaluate`` and ``fastem demo``: score held-out ratings next to baselines."""

import time

import numpy as np

from .. import __version__, backend_info
from ._evaluate import evaluate_holdout
from ._format import format_table
from ._output import CommandError
from ._shared import check_k, describe, fit_line, load_ratings, make_model

__all__ = ["run_evaluate", "run_demo"]


def _print_evaluation(evaluation, test_fraction, seed):
    held = evaluation.heldout.values.shape[0]
    print(f"held out {test_fraction:.0%} of the ratings at random (seed {seed}): "
          f"{evaluation.train.nnz:,} to fit, {held:,} to score")
    print(fit_line(evaluation.model, evaluation.fit_seconds, "fitted the rest with"))
    print(f"held-out log-likelihood: {evaluation.heldout_log_likelihood:.4f} per rating")
    print()
    rows = [(name, f"{rmse:.4f}", f"{mae:.4f}") for name, rmse, mae in evaluation.scores]
    print(format_table(["predictor of the held-out ratings", "RMSE", "MAE"], rows))


def _evaluate(data, args):
    """Fit on all but a held-out share of ``data`` with the options' model, and report."""
    model, progress = make_model(args, args.k)
    evaluation = evaluate_holdout(data, model, args.test_fraction, args.seed,
                                  progress=progress)
    if progress is not None:
        progress.close()
    _print_evaluation(evaluation, args.test_fraction, args.seed)
    return evaluation


def run_evaluate(args):
    """Run ``fastem evaluate`` with the parsed ``args``; the exit status."""
    start = time.perf_counter()
    ratings = load_ratings(args.data, args.format)
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
                        random_state=args.seed)
    print(f"generated synthetic ratings: {data.n_samples:,} users x {data.n_features:,} "
          f"items, {data.nnz:,} ratings 1..5 from {args.groups} planted taste groups "
          f"(seed {args.seed}, {time.perf_counter() - start:.2f} s)")
    if args.k > data.n_samples:
        raise CommandError(f"-k {args.k} is more than the {data.n_samples:,} users")
    evaluation = _evaluate(data, args)
    held = evaluation.heldout
    shown = np.sort(np.random.RandomState(args.seed).permutation(held.values.shape[0])[:8])
    mixture = evaluation.predictions[f"Gaussian mixture (K = {args.k})"]
    biases = evaluation.predictions["user + item biases"]
    rows = [(str(held.rows[p]), str(held.cols[p]), f"{held.values[p]:g}",
             f"{mixture[p]:.2f}", f"{biases[p]:.2f}") for p in shown]
    print()
    print("a few held-out ratings, completed from the rest of each user's ratings:")
    print(format_table(["user", "item", "rating", "mixture", "user + item biases"],
                       rows, align=[">"] * 5))
    return 0
