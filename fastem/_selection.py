"""Choosing the number of components: BIC or held-out log-likelihood."""

import math
import time
from typing import NamedTuple

import numpy as np

from ._input import as_source, is_deferred
from ._observed import ObservedData
from ._validation import Settings, check_bool, check_fit_data, check_fraction, is_int
from .mixture import GaussianMixture

__all__ = ["Selection", "select_n_components", "split_entries", "heldout_log_likelihood"]

CRITERIA = ("bic", "heldout")


class Selection(NamedTuple):
    """Result of :func:`select_n_components`.

    Attributes
    ----------
    table : dict of str to ndarray
        One entry per candidate, in the order given (``pandas.DataFrame(table)``
        makes it a data frame).
    best_n_components : int
    best_model : GaussianMixture
    """

    table: dict
    best_n_components: int
    best_model: GaussianMixture


def split_entries(data, fraction, random_state):
    """Hold out a random ``fraction`` of the observed entries.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    fraction : float
        Share of the observed entries held out, in (0, 1); each entry is
        held out independently with this probability.
    random_state : int, RandomState or None

    Returns
    -------
    train : ObservedData of shape (n_samples, n_features)
        The remaining entries (a row may lose all of them).
    heldout : tuple of ndarray (rows, cols, values), each of shape (m,)
        The held-out entries; values have the dtype of ``data``.
    """
    rng = (random_state if isinstance(random_state, np.random.RandomState)
           else np.random.RandomState(random_state))
    held = rng.random_sample(data.nnz) < fraction
    rows = np.repeat(np.arange(data.n_samples), np.diff(data.indptr))
    counts = np.bincount(rows[~held], minlength=data.n_samples)
    indptr = np.zeros(data.n_samples + 1, dtype=data.indptr.dtype)
    np.cumsum(counts, out=indptr[1:])
    train = ObservedData(data.data[~held], data.indices[~held], indptr,
                         data.n_features, copy=False)
    return train, (rows[held], data.indices[held], data.data[held])


def heldout_log_likelihood(model, full, train):
    """Total log-likelihood of the held-out entries given the rest of their rows.

    ``log p(x_held | x_train) = log p(x_full) - log p(x_train)`` for each
    row, summed: exact for the mixture, since the missing coordinates are
    marginalised out.

    Parameters
    ----------
    model : fitted GaussianMixture
    full, train : ObservedData of shape (n_samples, n_features)
        All entries, and those left after holding some out.

    Returns
    -------
    float
    """
    return math.fsum(model.score_samples(full) - model.score_samples(train))


def select_n_components(X, candidates, *, criterion="bic", heldout_fraction=0.1,
                        random_state=None, refit=True, **params):
    """Fit one mixture per number of components and pick the best.

    Parameters
    ----------
    X : {array-like, sparse matrix, ObservedData} of shape (n_samples, n_features)
        As for :meth:`GaussianMixture.fit` (dense input: ``missing_values``,
        given in ``params``, marks missing entries; sparse input: stored
        entries are the observed ones).
    candidates : iterable of int
        Numbers of components to try, each between 1 and n_samples.
    criterion : {'bic', 'heldout'}, default='bic'
        'bic': fit every candidate on all of X and keep the lowest BIC
        (``-2 LL + p ln n``). 'heldout': hold out ``heldout_fraction`` of the
        observed entries, fit on the rest, keep the highest log-likelihood of
        the held-out entries given the rest of their row.
    heldout_fraction : float, default=0.1
        Share of the observed entries held out ('heldout' only), in (0, 1).
    random_state : int, RandomState or None, default=None
        Seeds the split and, unless ``params`` has its own, the fits.
    refit : bool, default=True
        'heldout' only: refit the best candidate on all of X for
        ``best_model`` (otherwise it is the model fitted without the
        held-out entries).
    **params
        Other :class:`GaussianMixture` settings (``covariance_type``,
        ``n_init``, ``init_params``, ``missing_values``, ...).

    Returns
    -------
    Selection
        ``table`` with, per candidate: ``n_components``, ``log_likelihood``
        (total log-likelihood of the fitted data under the final parameters),
        ``bic``, ``aic``, ``heldout_log_likelihood`` ('heldout' only: per
        held-out entry, in nats), ``n_iter``, ``converged`` and ``fit_time``
        (seconds); then ``best_n_components`` and ``best_model``.

    Raises
    ------
    ValueError
        For an unknown criterion, an empty or invalid list of candidates, a
        ``heldout_fraction`` outside (0, 1), an invalid setting, or X that
        cannot be fitted (see :meth:`GaussianMixture.fit`).
    TypeError
        For candidates that are not a list, or a setting that
        :class:`GaussianMixture` does not have.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion={criterion!r} is invalid: use one of {CRITERIA}")
    if is_deferred(X):
        raise ValueError("select_n_components takes data in memory, not a Dask "
                         "collection; on Dask, fit one GaussianMixture per candidate "
                         "and compare their model.bic(X)")
    try:
        candidates = list(candidates)
    except TypeError:
        raise TypeError(f"candidates={candidates!r} is invalid: give a list of ints "
                        ">= 1 (the numbers of components to try)") from None
    if not candidates or not all(is_int(k) and k >= 1 for k in candidates):
        raise ValueError(f"candidates={candidates!r} is invalid: give a non-empty "
                         "list of ints >= 1")
    if "n_components" in params:
        raise ValueError("pass the numbers of components as candidates, not n_components")
    check_fraction(heldout_fraction, "heldout_fraction")
    check_bool(refit, "refit")
    # Every setting, up front.
    Settings(GaussianMixture(int(candidates[0]), **params).get_params())
    source = as_source(X, missing_values=params.get("missing_values", np.nan))
    check_fit_data(*source.shape, source.nnz, source.max_abs)
    full = source.data
    if max(candidates) > full.n_samples:
        raise ValueError(f"candidates must be <= n_samples={full.n_samples}; got "
                         f"{max(candidates)}")
    params.setdefault("random_state", random_state)
    if criterion == "heldout":
        train, held = split_entries(full, heldout_fraction, random_state)
        n_heldout = held[0].shape[0]
        if n_heldout == 0:
            raise ValueError("no entry was held out; raise heldout_fraction")
    else:
        train = full
    rows = []
    models = []
    for k in candidates:
        start = time.perf_counter()
        model = GaussianMixture(int(k), **params).fit(train)
        seconds = time.perf_counter() - start
        log_likelihood = math.fsum(model.score_samples(train))
        row = {
            "n_components": int(k),
            "log_likelihood": log_likelihood,
            "bic": model.bic(train),
            "aic": model.aic(train),
        }
        if criterion == "heldout":
            row["heldout_log_likelihood"] = (
                heldout_log_likelihood(model, full, train) / n_heldout)
        row.update(n_iter=model.n_iter_, converged=model.converged_, fit_time=seconds)
        rows.append(row)
        models.append(model)
    table = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    if criterion == "bic":
        best = int(np.argmin(table["bic"]))
    else:
        best = int(np.argmax(table["heldout_log_likelihood"]))
    best_model = models[best]
    if criterion == "heldout" and refit:
        best_model = GaussianMixture(int(candidates[best]), **params).fit(full)
    return Selection(table, int(candidates[best]), best_model)
