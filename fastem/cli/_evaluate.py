"""Hold-out evaluation: fit on part of the ratings, score the rest, with baselines.

A random share of the observed ratings is held out, and the models are
fitted on the others: the plain mixture predicts every held-out rating by
its posterior mean given the ratings of its user that were kept; the
recommender (:class:`~fastem.Recommender`), fitted on the same kept ratings
with the row and column numbers as ids, by its own prediction. Three
baselines, fitted on the same kept ratings, give the scale:

- the global mean of the ratings;
- the mean rating of the item (the global mean for an item with no kept
  rating);
- user and item biases, ``mean + b_u + b_i``, regularised as the baseline
  predictors of Koren (2010), "Factor in the neighbors", section 2.1:
  ``b_i = sum_u (r_ui - mean) / (25 + n_i)``, then
  ``b_u = sum_i (r_ui - mean - b_i) / (10 + n_u)``, where n_i and n_u count
  the kept ratings of the item and of the user.

No prediction but the recommender's is clipped; the recommender clips its
own to the range of the kept ratings.
"""

import math
import time
from typing import NamedTuple

import numpy as np

from .._selection import heldout_log_likelihood, split_entries
from ..recommender import prediction_scores

__all__ = ["HeldOut", "Evaluation", "split_ratings", "baseline_predictions",
           "evaluate_holdout", "mixture_name", "recommender_name"]

# Shrinkage of the item and user biases, in ratings (Koren's lambda_2, lambda_3).
ITEM_BIAS_SHRINKAGE = 25.0
USER_BIAS_SHRINKAGE = 10.0


class HeldOut(NamedTuple):
    """The held-out ratings: ``values[p]`` is the rating of row ``rows[p]``
    for column ``cols[p]``."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray


class Evaluation(NamedTuple):
    """Result of :func:`evaluate_holdout`.

    Attributes
    ----------
    model : GaussianMixture
        Fitted on ``train``.
    train : ObservedData
        The ratings that were kept.
    heldout : HeldOut
    predictions : dict of str to ndarray
        Predictions of the held-out ratings per method, in table order.
    scores : list of (str, float, float)
        ``(method, RMSE, MAE)`` per method, in the same order.
    fit_seconds : float
    heldout_log_likelihood : float
        Log-likelihood of the held-out ratings given the kept ones, per
        held-out rating (nats), under ``model``.
    recommender : Recommender or None
        Fitted on ``train``, when one was given.
    recommender_seconds : float
        The time of its fit (NaN without one).
    """

    model: object
    train: object
    heldout: HeldOut
    predictions: dict
    scores: list
    fit_seconds: float
    heldout_log_likelihood: float
    recommender: object = None
    recommender_seconds: float = math.nan


def split_ratings(data, test_fraction, seed):
    """Hold out a random share of the observed ratings.

    Parameters
    ----------
    data : ObservedData of shape (n_users, n_items)
    test_fraction : float
        Each rating is held out independently with this probability, in (0, 1).
    seed : int or None
        Seed of the ``numpy.random.RandomState`` that draws the split.

    Returns
    -------
    train : ObservedData of shape (n_users, n_items)
    heldout : HeldOut

    Raises
    ------
    ValueError
        If ``test_fraction`` is outside (0, 1), or no rating is held out or
        none is kept.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"the test fraction must lie strictly between 0 and 1, "
                         f"got {test_fraction}")
    train, (rows, cols, values) = split_entries(data, test_fraction, seed)
    if values.shape[0] == 0:
        raise ValueError(f"no rating was held out of the {data.nnz}; raise the test "
                         "fraction")
    if train.nnz == 0:
        raise ValueError(f"every one of the {data.nnz} ratings was held out; lower the "
                         "test fraction")
    return train, HeldOut(rows, cols, values)


def _sums_and_counts(index, values, size):
    return (np.bincount(index, weights=values, minlength=size),
            np.bincount(index, minlength=size))


def baseline_predictions(train, rows, cols):
    """Predictions of the three baselines for the entries (rows[p], cols[p]).

    Parameters
    ----------
    train : ObservedData of shape (n_users, n_items)
        The ratings the baselines are fitted on.
    rows, cols : ndarray of int, shape (m,)

    Returns
    -------
    dict of str to ndarray of shape (m,), float64
        ``'global mean'``, ``'item mean'`` and ``'user + item biases'``.
    """
    values = train.data.astype(np.float64)
    train_rows = np.repeat(np.arange(train.n_samples), np.diff(train.indptr))
    mean = values.mean()
    item_sums, item_counts = _sums_and_counts(train.indices, values, train.n_features)
    item_means = np.divide(item_sums, item_counts, out=np.full(train.n_features, mean),
                           where=item_counts > 0)
    item_bias = (item_sums - mean * item_counts) / (ITEM_BIAS_SHRINKAGE + item_counts)
    residuals = values - mean - item_bias[train.indices]
    user_sums, user_counts = _sums_and_counts(train_rows, residuals, train.n_samples)
    user_bias = user_sums / (USER_BIAS_SHRINKAGE + user_counts)
    return {
        "global mean": np.full(rows.shape[0], mean),
        "item mean": item_means[cols],
        "user + item biases": mean + user_bias[rows] + item_bias[cols],
    }


def _close(progress):
    if progress is not None and hasattr(progress, "close"):
        progress.close()


def mixture_name(model):
    """The name of a plain mixture's row in the table: 'Gaussian mixture (K = 8)'."""
    return f"Gaussian mixture (K = {model.n_components})"


def recommender_name(model):
    """The name of a recommender's row in the table: 'recommender (K = 8)'."""
    return f"recommender (K = {model.n_components})"


def evaluate_holdout(data, model, test_fraction, seed, *, progress=None, recommender=None,
                     recommender_progress=None):
    """Fit ``model`` (and ``recommender``) on a random part of the ratings, score the rest.

    Parameters
    ----------
    data : ObservedData of shape (n_users, n_items)
        All the observed ratings.
    model : GaussianMixture
        Unfitted; fitted here on the kept ratings.
    test_fraction : float
        Share of the ratings held out, in (0, 1).
    seed : int or None
        Seed of the split.
    progress : callable, optional
        Follows the fit: passed to ``model.fit(train, progress=progress)``,
        and closed after it when it has a ``close`` method.
    recommender : Recommender, optional
        Unfitted; fitted here on the kept ratings after ``model``, and
        scored in the last row.
    recommender_progress : callable, optional
        Makes the ``progress`` argument of the recommender's fit; called
        just before that fit.

    Returns
    -------
    Evaluation
        The rows: the global mean, the item mean, the user + item biases,
        the mixture, then the recommender.
    """
    train, heldout = split_ratings(data, test_fraction, seed)
    start = time.perf_counter()
    try:
        model.fit(train, progress=progress)
    finally:
        _close(progress)
    fit_seconds = time.perf_counter() - start
    recommender_seconds = math.nan
    if recommender is not None:
        follow = recommender_progress() if recommender_progress is not None else None
        start = time.perf_counter()
        try:
            # Fitted without ids: its ids are the row and column numbers.
            recommender.fit(train, progress=follow)
        finally:
            _close(follow)
        recommender_seconds = time.perf_counter() - start
    predictions = baseline_predictions(train, heldout.rows, heldout.cols)
    # The held-out entries are missing from train, so these are posterior means.
    predictions[mixture_name(model)] = model.predict_entries(train, heldout.rows,
                                                             heldout.cols)
    if recommender is not None:
        predictions[recommender_name(recommender)] = recommender.predict(heldout.rows,
                                                                         heldout.cols)
    actual = heldout.values.astype(np.float64)
    scores = [(method, *prediction_scores(guess, actual))
              for method, guess in predictions.items()]
    loglik = heldout_log_likelihood(model, data, train) / actual.shape[0]
    return Evaluation(model, train, heldout, predictions, scores, fit_seconds, loglik,
                      recommender, recommender_seconds)
