"""``fastem recommend``: the top N unrated items of users, by a recommender."""

import sys
from pathlib import Path

import numpy as np

from .. import Recommender, load
from ._format import count
from ._output import CommandError, atomic_output, check_output, warn
from ._pairs import IdIndex
from ._recommend import (RatingsByUser, among, fold_in_unknown, label_texts, model_ids,
                         read_users, recommendations)
from ._shared import load_ratings

__all__ = ["run"]


def _load_recommender(path):
    if not Path(path).exists():
        raise CommandError(f"{path}: no such model file")
    model = load(path)
    if not isinstance(model, Recommender):
        raise CommandError(f"{path} holds a Gaussian mixture; recommend needs a "
                           "recommender model ('fastem fit DATA', without --model "
                           "mixture)")
    return model


def run(args):
    """Run ``fastem recommend`` with the parsed ``args``; the exit status."""
    check_output(args.output, args.force)
    report = sys.stderr if args.output == "-" else sys.stdout
    model = _load_recommender(args.model)
    if args.threads is not None:
        model.n_threads = args.threads
    ratings = load_ratings(args.ratings, args.ratings_format, args.duplicates)
    if args.users is not None:
        in_ratings, in_model = IdIndex(ratings.row_labels), IdIndex(model.user_ids_)
        texts = read_users(args.users, lambda user: user in in_ratings or user in in_model)
    else:
        texts = label_texts(ratings.row_labels)
    by_user = RatingsByUser(model, ratings)
    users = model_ids(texts, model.user_ids_)
    folded = fold_in_unknown(model, by_user, users)
    cold = ~among(users, model.user_ids_)
    n_lines = 0
    with atomic_output(args.output, args.force) as handle:
        handle.write("user\trank\titem\tpredicted_rating\n")
        for position, items, scores in recommendations(model, by_user, users, args.n):
            user = texts[position]
            handle.writelines(f"{user}\t{rank}\t{item}\t{score:.6g}\n"
                              for rank, (item, score)
                              in enumerate(zip(items.tolist(), scores.tolist()), 1))
            n_lines += items.shape[0]
    if cold.any():
        first = texts[int(np.argmax(cold))]
        warn(f"{count(int(cold.sum()), 'user')} without ratings the model can use (not "
             f"in the model, and no rating in {args.ratings} of an item it knows; first: "
             f"{first!r}): recommended the items of the mean user")
    if folded.dropped_ratings:
        warn(f"{count(folded.dropped_ratings, 'rating')} in {args.ratings} of items the "
             "model does not know were left out of the fold-in")
    if not args.quiet:
        folded_text = (f", {folded.users:,} of them folded in from their ratings in "
                       f"{args.ratings}" if folded.users else "")
        print(f"recommended {count(n_lines, 'item')} to {count(len(texts), 'user')} "
              f"(up to {args.n} each{folded_text}) -> {args.output}", file=report)
    return 0
