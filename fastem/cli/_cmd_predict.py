"""``fastem predict``: predict the ratings of (user, item) pairs, or complete a matrix.

A recommender predicts every pair (:mod:`._recommend`); a mixture, the pairs of
the items it knows (:mod:`._pairs`), or the whole matrix with ``--fill``.
"""

import sys
from pathlib import Path

import numpy as np

from .. import Recommender, load
from ._format import count
from ._output import CommandError, atomic_output, check_output, warn
from ._pairs import IdIndex, model_column_index, predict_pairs, read_pairs
from ._recommend import predict_recommender
from ._shared import load_ratings

__all__ = ["run", "MAX_FILL_ENTRIES"]

# Beyond this many entries --fill refuses to write a dense matrix.
MAX_FILL_ENTRIES = 50_000_000


def _load_model(path):
    if not Path(path).exists():
        raise CommandError(f"{path}: no such model file")
    return load(path)


def run(args):
    """Run ``fastem predict`` with the parsed ``args``; the exit status."""
    if args.fill and args.ratings is not None:
        raise CommandError("--fill completes DATA itself, with its own ratings; "
                           "drop --ratings")
    if not args.fill and args.ratings is None:
        raise CommandError(
            "predict needs --ratings FILE: the observed ratings the predictions "
            "condition on (usually the file the model was fitted on)")
    check_output(args.output, args.force)
    report = sys.stderr if args.output == "-" else sys.stdout
    model = _load_model(args.model)
    if args.threads is not None:
        model.n_threads = args.threads
    recommender = isinstance(model, Recommender)
    if args.fill:
        if recommender:
            raise CommandError(f"{args.model} holds a recommender; --fill needs a "
                               "mixture model ('fastem fit --model mixture'): predict "
                               "pairs instead")
        return _fill(model, args, report)
    ratings = load_ratings(args.ratings, args.ratings_format, args.duplicates)
    if recommender:
        return _predict_recommender(model, ratings, args, report)
    columns = model_column_index(model)
    users = IdIndex(ratings.row_labels)

    pairs = read_pairs(args.data, lambda user, item: user in users or item in columns)
    predicted, info = predict_pairs(model, ratings, pairs)
    _write_predictions(args, pairs, predicted)
    unknown = info["unknown_items"]
    if unknown:
        n_pairs = int(np.isnan(predicted).sum())
        warn(f"the model does not know {count(len(unknown), 'item')} of {args.data} "
             f"(first: {unknown[0]!r}), in {count(n_pairs, 'pair')}: "
             "predicted_rating nan")
    if info["dropped_ratings"]:
        warn(f"{count(info['dropped_ratings'], 'rating')} in {args.ratings} of items "
             "the model does not know were left out of the posteriors")
    if not args.quiet:
        n_users = len(set(pairs.users))
        print(f"predicted {count(len(pairs.users), 'pair')} of "
              f"{count(n_users, 'user')} ({info['users_without_ratings']:,} without "
              f"ratings in {args.ratings}: predicted from the mixture weights) -> "
              f"{args.output}", file=report)
    return 0


def _write_predictions(args, pairs, predicted):
    with atomic_output(args.output, args.force) as handle:
        handle.write("user\titem\tpredicted_rating\n")
        handle.writelines(f"{user}\t{item}\t{value:.6g}\n"
                          for user, item, value in zip(pairs.users, pairs.items, predicted))


def _predict_recommender(model, ratings, args, report):
    """Predict the pairs of DATA with a recommender, folding in its new users."""
    users, model_users = IdIndex(ratings.row_labels), IdIndex(model.user_ids_)
    items = IdIndex(model.item_ids_)
    pairs = read_pairs(args.data, lambda user, item: (user in users or user in model_users
                                                      or item in items))
    predicted, info = predict_recommender(model, ratings, pairs)
    _write_predictions(args, pairs, predicted)
    unknown = info["unknown_items"]
    if unknown:
        warn(f"the model does not know {count(len(unknown), 'item')} of {args.data} "
             f"(first: {unknown[0]!r}), in {count(info['unknown_item_pairs'], 'pair')}: "
             "predicted from the mean rating and the user's offset alone")
    if info["dropped_ratings"]:
        warn(f"{count(info['dropped_ratings'], 'rating')} in {args.ratings} of items "
             "the model does not know were left out of the fold-in")
    if not args.quiet:
        n_users = len(set(pairs.users))
        print(f"predicted {count(len(pairs.users), 'pair')} of {count(n_users, 'user')} "
              f"-> {args.output}", file=report)
        new = info["unknown_users"]
        if new:
            print(f"{count(len(new), 'user')} of {args.data} not in the model: "
                  f"{info['folded_users']:,} folded in from their ratings in "
                  f"{args.ratings}, {info['cold_users']:,} without ratings there "
                  "(predicted from the item offsets and the mixture weights)",
                  file=report)
    return 0


def _fill(model, args, report):
    ratings = load_ratings(args.data, args.format, args.duplicates)
    n_users, n_items = ratings.shape
    if n_items != model.n_features_in_:
        raise CommandError(f"{args.data} has {n_items:,} items (columns) but the model "
                           f"{model.n_features_in_:,}")
    columns = model_column_index(model).find_labels(ratings.col_labels)
    if not np.array_equal(columns, np.arange(n_items)):
        raise CommandError(f"the items (columns) of {args.data} are not those of the "
                           "model, in the same order; --fill needs them to be")
    if n_users * n_items > MAX_FILL_ENTRIES:
        raise CommandError(f"the completed matrix would have {n_users * n_items:,} "
                           f"entries (more than {MAX_FILL_ENTRIES:,}); predict pairs "
                           "instead of --fill")
    filled = model.fill(ratings.to_observed())
    with atomic_output(args.output, args.force) as handle:
        np.savetxt(handle, filled, fmt="%.6g")
    if not args.quiet:
        print(f"completed the {n_users:,} x {n_items:,} matrix of {args.data} "
              f"({n_users * n_items - ratings.nnz:,} entries predicted) -> {args.output}",
              file=report)
    return 0
