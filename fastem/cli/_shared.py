"""Steps the commands share: read the ratings, make the estimators, summarise a fit."""

import sys
from pathlib import Path

from .. import GaussianMixture, Recommender
from .. import io as rating_io
from ._format import count
from ._output import CommandError
from ._progress import FitProgress, RecommenderProgress

__all__ = ["load_ratings", "describe", "check_k", "make_model", "fit_line",
           "make_recommender", "recommender_progress", "recommender_line"]


def load_ratings(path, format, duplicates="error"):
    """The ratings of ``path`` (fastem.io.load), refusing a file without any.

    ``duplicates``: the rule for a (user, item) pair on several lines (see
    ``fastem.io.load_triples``).
    """
    if Path(path).is_dir():
        raise CommandError(f"{path} is a folder, not a ratings file")
    suffix = Path(path).suffix.lower()
    if format is None and Path(path).exists() and suffix not in rating_io.EXTENSIONS:
        # fastem.io would say format=, the keyword; here it is an option.
        raise CommandError(f"{path}: cannot tell the format from the extension "
                           f"{suffix or '(none)'!r}; pass --format "
                           f"{{{','.join(rating_io.FORMATS)}}}")
    ratings = rating_io.load(path, format=format, duplicates=duplicates)
    if ratings.nnz == 0:
        raise CommandError(f"{path}: the file holds no rating")
    return ratings


def describe(path, ratings):
    """'NAME: N users x M items, R ratings'."""
    n_users, n_items = ratings.shape
    return (f"{Path(path).name}: {n_users:,} users x {n_items:,} items, "
            f"{ratings.nnz:,} ratings")


def check_k(k, ratings, option="-k"):
    """Refuse more components than the data have users."""
    n_users = ratings.shape[0]
    if k > n_users:
        raise CommandError(f"{option} {k} is more than the {n_users:,} users (rows) of "
                           "the data; lower it")


def make_model(args, n_components):
    """The estimator of the model options, and the progress display of its fit.

    Returns
    -------
    model : GaussianMixture
        Unfitted.
    progress : FitProgress or None
        None with ``--quiet``; else to pass as ``model.fit(X, progress=...)``,
        and to close after the fit.
    """
    model = GaussianMixture(n_components, covariance_type=args.covariance,
                            n_init=args.n_init, max_iter=args.max_iter, tol=args.tol,
                            random_state=args.seed, n_threads=args.threads)
    progress = None
    if not args.quiet:
        progress = FitProgress(sys.stderr, tol=args.tol, max_iter=args.max_iter)
    return model, progress


def fit_line(model, seconds, what="fitted"):
    """The one-line summary of a fit: K, settings, iterations, convergence, time."""
    status = "converged" if model.converged_ else "not converged: see --max-iter"
    restarts = f"{model.n_init} restarts" if model.n_init > 1 else "1 restart"
    return (f"{what} K = {model.n_components} ({model.covariance_type}, {restarts}, "
            f"seed {model.random_state}): {count(model.n_iter_, 'iteration')} ({status}), "
            f"{seconds:.2f} s")


def make_recommender(args, n_components=8, n_restarts=10, sides="both"):
    """The recommender of the options: --seed and --threads, else the defaults.

    Returns
    -------
    Recommender
        Unfitted.
    """
    return Recommender(n_components, sides=sides, n_restarts=n_restarts,
                       random_state=args.seed, n_threads=args.threads)


def recommender_progress(args, model):
    """The progress display of a recommender fit, or None with ``--quiet``.

    Make it just before ``model.fit(X, progress=...)`` (its clock starts
    then), and close it after.
    """
    if args.quiet:
        return None
    return RecommenderProgress(sys.stderr, n_restarts=model.n_restarts)


_SIDES = {"both": "mixtures of the users and of the items",
          "users": "a mixture of the users", "items": "a mixture of the items"}


def recommender_line(model, seconds, what="fitted the recommender"):
    """The one-line summary of a recommender fit: K, sides, restarts, seed, time."""
    each = " each" if model.sides == "both" else ""
    return (f"{what} (offsets and {_SIDES[model.sides]}, K = {model.n_components}, "
            f"{count(model.n_restarts, 'restart')}{each}, seed {model.random_state}): "
            f"{seconds:.2f} s")
