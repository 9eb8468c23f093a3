"""A mixture's predictions in the user's own ids: read (user, item) pairs, map them,
predict.

A fitted mixture knows its items by the column labels stored in its file
(the ids the loader read); the column number of an id is its position there.
A user is known by the ratings given with ``--ratings``: the posterior of a
user comes from that user's ratings of items the model knows, and a user
with none of them gets the mixture weights as posterior. (A recommender's
predictions are :mod:`._recommend`'s; they read their pairs here too.)
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from .. import as_observed
from .._text import (UTF8_BOM, decode, detect_delimiter, is_number, parse_int,
                        show_line, split_fields)

__all__ = ["Pairs", "read_pairs", "IdIndex", "model_column_index", "user_ratings",
           "predict_pairs"]


class Pairs(NamedTuple):
    """(user, item) pairs as written in a file, in file order."""

    users: list
    items: list


def _split(line, delimiter):
    return [field.strip() for field in split_fields(line, delimiter)]


def read_pairs(path, is_known):
    """Read the (user, item) pairs of a triples file, the rating column optional.

    Parameters
    ----------
    path : str or os.PathLike
        One pair per line, ``user item [rating [more fields]]``, separated by
        ``::``, a tab, a comma, a semicolon (the first found on the first
        line, in this order) or else whitespace. Blank lines are skipped.
        UTF-8, or Latin-1 when it is not UTF-8, as :mod:`fastem.io` reads.
    is_known : callable (user, item) -> bool
        Whether a pair names a known user or a known item; used to tell a
        header line from data.

    Returns
    -------
    Pairs

    Raises
    ------
    ValueError
        If the file holds no pair or a line has fewer than two fields or an
        empty id; the message names the file and the 1-based line.

    Notes
    -----
    The first non-blank line is a header, and skipped, when its rating
    field is not a number, or, without a rating field (absent or empty),
    when it names neither a known user nor a known item.
    """
    with open(path, "rb") as f:
        raw = f.read()
    lines = decode(raw.removeprefix(UTF8_BOM)).splitlines()
    numbered = [(k, line) for k, line in enumerate(lines, 1) if line.strip()]
    if not numbered:
        raise ValueError(f"{path}: the file holds no (user, item) pair")
    first = numbered[0][1]
    delimiter = detect_delimiter(first)
    fields = _split(first, delimiter)
    rating = fields[2] if len(fields) >= 3 else ""
    if rating:
        header = not is_number(rating)
    else:
        header = len(fields) >= 2 and not is_known(fields[0], fields[1])
    users, items = [], []
    for number, line in numbered[1:] if header else numbered:
        fields = _split(line, delimiter)
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise ValueError(f"{path}, line {number}: expected 'user item [rating]', "
                             f"got {show_line(line.strip())}")
        users.append(fields[0])
        items.append(fields[1])
    if not users:
        raise ValueError(f"{path}: the file holds a header but no (user, item) pair")
    return Pairs(users, items)


class IdIndex:
    """Position of each id among ``labels``, for ids read as text.

    Integer labels match text ids that are integers (``'017'`` is 17, as
    the loaders read them); any other labels match ids as strings.

    Parameters
    ----------
    labels : ndarray of shape (n,)
    """

    def __init__(self, labels):
        labels = np.asarray(labels)
        self.integer = labels.dtype.kind in "iu"
        keys = labels.tolist() if self.integer else [str(label) for label in labels]
        self.position = {key: k for k, key in enumerate(keys)}

    def key(self, text):
        """The lookup key of a text id (None if it cannot be a label)."""
        return parse_int(text) if self.integer else text

    def __contains__(self, text):
        return self.position.get(self.key(text)) is not None

    def find(self, texts):
        """Positions of the text ids, -1 where an id is not a label.

        Parameters
        ----------
        texts : list of str

        Returns
        -------
        ndarray of shape (len(texts),), int64
        """
        get, key = self.position.get, self.key
        return np.array([get(key(text), -1) for text in texts], dtype=np.int64)

    def find_labels(self, labels):
        """Positions of the labels of another array (e.g. a loader's), -1 if absent.

        Parameters
        ----------
        labels : ndarray of shape (m,)

        Returns
        -------
        ndarray of shape (m,), int64
        """
        labels = np.asarray(labels)
        if self.integer and labels.dtype.kind in "iu":
            keys = labels.tolist()
        else:
            keys = [self.key(str(label)) for label in labels]
        get = self.position.get
        return np.array([get(key, -1) for key in keys], dtype=np.int64)


def model_column_index(model):
    """:class:`IdIndex` of the model's items: its column labels, else 0..d-1."""
    labels = getattr(model, "column_labels_", None)
    if labels is None:
        labels = np.arange(model.n_features_in_, dtype=np.int64)
    return IdIndex(labels)


def user_ratings(rating_data, user_rows, model_columns, n_features):
    """The ratings of the given users, on the model's columns.

    Parameters
    ----------
    rating_data : fastem.io.RatingData
        The observed ratings.
    user_rows : ndarray of shape (m,), int64
        Row of ``rating_data`` of each wanted user; -1 for a user without
        ratings, who gets an empty row.
    model_columns : IdIndex
        The model's items.
    n_features : int
        The model's number of columns.

    Returns
    -------
    ratings : ObservedData of shape (m, n_features)
    n_dropped : int
        Ratings of the wanted users dropped for naming an item the model
        does not know.
    """
    columns = model_columns.find_labels(rating_data.col_labels)
    present = user_rows >= 0
    taken = rating_data.matrix[np.where(present, user_rows, 0)].tocoo()
    cols = columns[taken.col]
    of_user = present[taken.row]
    keep = of_user & (cols >= 0)
    aligned = sp.csr_matrix((taken.data[keep], (taken.row[keep], cols[keep])),
                            shape=(user_rows.shape[0], n_features))
    return as_observed(aligned), int((of_user & (cols < 0)).sum())


def predict_pairs(model, rating_data, pairs):
    """Predicted ratings of the pairs, and what could not be predicted.

    Parameters
    ----------
    model : fitted GaussianMixture
        With ``column_labels_`` (else its columns are numbered 0..d-1).
    rating_data : fastem.io.RatingData
        The observed ratings the posteriors condition on.
    pairs : Pairs

    Returns
    -------
    predicted : ndarray of shape (n_pairs,), float64
        The posterior mean of each pair (the rating itself when the pair is
        rated in ``rating_data``); NaN for a pair whose item the model does
        not know.
    info : dict
        ``unknown_items`` (the ids of items the model does not know, in
        order of appearance), ``users_without_ratings`` (number of distinct
        users of the pairs with no rating of a known item) and
        ``dropped_ratings`` (ratings by the users of the pairs of items the
        model does not know: they cannot inform a posterior).
    """
    columns = model_column_index(model)
    item_cols = columns.find(pairs.items)
    user_ids, user_of_pair = np.unique(np.array(pairs.users, dtype=str),
                                       return_inverse=True)
    user_rows = IdIndex(rating_data.row_labels).find(user_ids.tolist())
    data, n_dropped = user_ratings(rating_data, user_rows, columns, model.n_features_in_)
    known = item_cols >= 0
    predicted = np.full(len(pairs.items), np.nan)
    if known.any():
        predicted[known] = model.predict_entries(data, user_of_pair.ravel()[known],
                                                 item_cols[known])
    unknown = list(dict.fromkeys(item for item, k in zip(pairs.items, known) if not k))
    info = {
        "unknown_items": unknown,
        "users_without_ratings": int((np.diff(data.indptr) == 0).sum()),
        "dropped_ratings": n_dropped,
    }
    return predicted, info
