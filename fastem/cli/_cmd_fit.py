"""``fastem fit``: fit a recommender or a mixture to ratings, save it with their ids."""

import time
from pathlib import Path

import numpy as np

from ._output import atomic_output, check_output
from ._shared import (check_k, describe, fit_line, load_ratings, make_model,
                      make_recommender, recommender_line, recommender_progress)

__all__ = ["run", "default_output"]


def default_output(args):
    """DATA's stem with ``.recommender.npz``, or ``.kK.npz`` for a mixture."""
    stem = Path(args.data).stem
    if args.model == "mixture":
        return f"{stem}.k{args.k}.npz"
    return f"{stem}.recommender.npz"


def run(args):
    """Run ``fastem fit`` with the parsed ``args``; the exit status."""
    output = args.output or default_output(args)
    check_output(output, args.force)
    start = time.perf_counter()
    ratings = load_ratings(args.data, args.format, args.duplicates)
    print(f"read {describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    if args.model == "mixture":
        model = _fit_mixture(args, ratings)
        save = dict(row_labels=ratings.row_labels, column_labels=ratings.col_labels)
    else:
        model = _fit_recommender(args, ratings)
        save = {}
    with atomic_output(output, args.force, binary=True) as handle:
        model.save(handle, **save)
    print(f"model written to {output}, with the ids of the {ratings.shape[0]:,} users "
          f"and {ratings.shape[1]:,} items")
    return 0


def _fit_mixture(args, ratings):
    check_k(args.k, ratings)
    data = ratings.to_observed()
    model, progress = make_model(args, args.k)
    start = time.perf_counter()
    model.fit(data, progress=progress)
    seconds = time.perf_counter() - start
    if progress is not None:
        progress.close()
    bic = model.bic(data)
    print(fit_line(model, seconds))
    print(f"  log-likelihood  {model.log_likelihood_:.10g} "
          f"({model.log_likelihood_ / ratings.nnz:.4f} per rating)")
    print(f"  BIC             {bic:.10g} (lower is better)")
    return model


def _fit_recommender(args, ratings):
    model = make_recommender(args, args.k, args.restarts, args.sides)
    progress = recommender_progress(args, model)
    start = time.perf_counter()
    try:
        model.fit(ratings.matrix, user_ids=ratings.row_labels,
                  item_ids=ratings.col_labels, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start
    n_users, n_items = ratings.shape
    print(recommender_line(model, seconds))
    print(f"  data                   {n_users:,} users x {n_items:,} items, "
          f"{ratings.nnz:,} ratings {model.rating_range_[0]:g}..{model.rating_range_[1]:g}")
    variance = float(np.var(ratings.matrix.data))
    print(f"  mean squared residual  {model.residual_variance_:.4f} after the user and "
          f"item offsets (variance of the ratings: {variance:.4f})")
    return model
