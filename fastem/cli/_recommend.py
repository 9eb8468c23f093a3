"""A recommender's predictions and recommendations in the user's own ids.

A :class:`~fastem.Recommender` file holds the ids of its users and items.
Ids read as text (pairs, lists of users, the labels of a ratings file) are
matched with them as the loaders read ids: as numbers when the model's ids
are integers (``'017'`` is 17), else as strings. The users of the ratings
file that the model does not know are folded in from their ratings there
(:meth:`~fastem.Recommender.fold_in`, no refit) before they are predicted;
the users the model knows keep their offsets and posteriors.
"""

from typing import NamedTuple

import numpy as np

from .._text import UTF8_BOM, decode, parse_int

__all__ = ["model_ids", "label_texts", "among", "RatingsByUser", "FoldIn",
           "fold_in_unknown", "predict_recommender", "read_users", "recommendations"]

# Users per call of Recommender.recommend, so that the pairs to leave out and
# the results stay small.
_USERS_PER_BLOCK = 4096


def model_ids(texts, labels):
    """Text ids as the recommender matches them with its ``labels``.

    Parameters
    ----------
    texts : list of str
    labels : ndarray
        The model's ``user_ids_`` or ``item_ids_``.

    Returns
    -------
    ndarray of str, shape (len(texts),)
        The texts; when ``labels`` are integers, the integer ones written as
        Python writes the number (``'+017'`` is ``'17'``), and the others
        matching no label.
    """
    if np.asarray(labels).dtype.kind in "iu":
        canonical = []
        for text in texts:
            value = parse_int(text)
            canonical.append(text if value is None else str(value))
        texts = canonical
    return np.array(list(texts), dtype=str)


def label_texts(labels):
    """The labels of a ratings file (int64 or str) as text."""
    return [str(label) for label in np.asarray(labels).tolist()]


def among(ids, labels):
    """Whether each of ``ids`` (from :func:`model_ids`) is among the model's ``labels``."""
    return np.isin(ids, np.asarray(labels).astype(str))


class RatingsByUser:
    """A ratings file in a model's ids: the ratings of a user, by id.

    Make it before any fold-in: the ids the model has then tell how text ids
    are matched (:func:`model_ids`).

    Parameters
    ----------
    model : Recommender
    rating_data : fastem.io.RatingData

    Attributes
    ----------
    users, items : ndarray of str
        The ids of the rows and columns of ``rating_data``, from
        :func:`model_ids`.
    """

    def __init__(self, model, rating_data):
        self.matrix = rating_data.matrix
        self.users = model_ids(label_texts(rating_data.row_labels), model.user_ids_)
        self.items = model_ids(label_texts(rating_data.col_labels), model.item_ids_)
        self._row = {user: row for row, user in enumerate(self.users.tolist())}

    def ratings_of(self, users):
        """(users, items, ratings) of the given users; a user not in the file has none.

        Parameters
        ----------
        users : ndarray of str
            Distinct user ids, from :func:`model_ids`.
        """
        rows = np.array([self._row.get(user, -1) for user in users.tolist()],
                        dtype=np.intp)
        present = rows >= 0
        taken = self.matrix[rows[present]].tocoo()
        return users[present][taken.row], self.items[taken.col], taken.data


class FoldIn(NamedTuple):
    """What :func:`fold_in_unknown` did."""

    users: int
    """Users folded in."""
    dropped_ratings: int
    """Their ratings of items the model does not know, left out."""


def fold_in_unknown(model, ratings, wanted):
    """Fold the users of ``wanted`` the model does not know in, from their ratings.

    Parameters
    ----------
    model : Recommender
        Fitted; changed in place.
    ratings : RatingsByUser
    wanted : ndarray of str
        User ids from :func:`model_ids`.

    Returns
    -------
    FoldIn
    """
    new = np.unique(wanted[~among(wanted, model.user_ids_)])
    if new.size == 0:
        return FoldIn(0, 0)
    users, items, values = ratings.ratings_of(new)
    known_item = among(items, model.item_ids_)
    if known_item.any():
        model.fold_in(users[known_item], items[known_item], values[known_item])
    return FoldIn(int(np.unique(users[known_item]).shape[0]), int((~known_item).sum()))


def _distinct(texts, mask):
    """The texts where ``mask`` holds, each once, in order of appearance."""
    return list(dict.fromkeys(text for text, m in zip(texts, mask) if m))


def predict_recommender(model, rating_data, pairs):
    """Predictions of the pairs by a recommender, after folding in new users.

    Parameters
    ----------
    model : Recommender
        Fitted; the users of the pairs it does not know are folded in from
        ``rating_data``.
    rating_data : fastem.io.RatingData
    pairs : Pairs

    Returns
    -------
    predicted : ndarray of shape (n_pairs,), float64
        Finite for every pair.
    info : dict
        ``unknown_users`` (ids of the users of the pairs that the model did
        not know, in order of appearance), ``folded_users`` (how many of
        them were folded in), ``cold_users`` (the others: no rating of a
        known item in ``rating_data``), ``unknown_items`` (ids of the items
        the model does not know), ``unknown_item_pairs`` (pairs of those
        items) and ``dropped_ratings`` (ratings of the folded users of items
        the model does not know).
    """
    users = model_ids(pairs.users, model.user_ids_)
    items = model_ids(pairs.items, model.item_ids_)
    unknown = ~among(users, model.user_ids_)
    folded = fold_in_unknown(model, RatingsByUser(model, rating_data), users[unknown])
    cold = ~among(users, model.user_ids_)
    unknown_item = ~among(items, model.item_ids_)
    predicted = model.predict(users, items)
    info = {
        "unknown_users": _distinct(pairs.users, unknown),
        "folded_users": folded.users,
        "cold_users": len(_distinct(users, cold)),
        "unknown_items": _distinct(pairs.items, unknown_item),
        "unknown_item_pairs": int(unknown_item.sum()),
        "dropped_ratings": folded.dropped_ratings,
    }
    return predicted, info


def read_users(path, is_known):
    """The user ids of a file, one a line, each once, in file order.

    Parameters
    ----------
    path : str or os.PathLike
        UTF-8, or Latin-1 when it is not UTF-8. Blank lines are skipped and
        the ids stripped of surrounding whitespace.
    is_known : callable str -> bool
        Whether an id names a known user; the first line is a header, and
        skipped, when it does not.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        If the file lists no user.
    """
    with open(path, "rb") as f:
        raw = f.read()
    texts = [line.strip() for line in decode(raw.removeprefix(UTF8_BOM)).splitlines()]
    texts = [text for text in texts if text]
    if not texts:
        raise ValueError(f"{path}: the file lists no user")
    if not is_known(texts[0]):
        texts = texts[1:]
        if not texts:
            raise ValueError(f"{path}: the file holds a header but no user")
    return list(dict.fromkeys(texts))


def recommendations(model, ratings, users, n):
    """The top ``n`` unrated items of each user, block by block.

    Parameters
    ----------
    model : Recommender
        Fitted, the users already folded in (:func:`fold_in_unknown`).
    ratings : RatingsByUser
        What the users have rated: never recommended.
    users : ndarray of str
        Distinct user ids, from :func:`model_ids`.
    n : int

    Yields
    ------
    position : int
        Index in ``users`` of the user.
    items : ndarray
        Item ids, best first: at most ``n``, fewer when fewer items are left.
    scores : ndarray of float64
        Their predicted ratings.
    """
    for start in range(0, users.shape[0], _USERS_PER_BLOCK):
        block = users[start:start + _USERS_PER_BLOCK]
        rated_users, rated_items, _ = ratings.ratings_of(block)
        found = model.recommend(block, n, exclude=(rated_users, rated_items))
        for k, (items, scores) in enumerate(found):
            yield start + k, items, scores
