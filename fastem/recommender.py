"""The recommender: :class:`Recommender`, bias-centred MAP mixtures on both sides.

A rating is predicted as the global mean, plus regularised user and item
offsets (the biases), plus two corrections from Gaussian mixtures fitted to
what the biases leave (the residuals): one whose rows are the users, one
whose rows are the items. Each mixture is fitted by EM with a Normal prior
on its means and a shared, fixed variance (``GaussianMixture``'s MAP options,
docs/model.md, section 8), and each correction is averaged over several
restarts. docs/model.md, section 9 states the whole model.
"""

import json
import sys
import time
import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._base import SettingsMixin
from ._exceptions import ConvergenceWarning, ModelFileError, not_fitted_error
from ._memory import InMemorySource
from ._observed import ObservedData, as_observed, row_blocks, row_of_entry, sort_entries
from ._pass import estep
from ._persist import labels_array, write_members
from ._validation import (Params, check_backend, check_fraction, check_max_iter,
                          check_mean_prior_strength, check_n_components, check_n_threads,
                          check_non_negative, check_positive, check_random_state,
                          check_tol, check_verbose, invalid, is_int)
from ._version import __version__
from .mixture import GaussianMixture

__all__ = ["Recommender", "Scores", "SIDES", "prediction_scores"]

SIDES = ("both", "users", "items")
# Each fit starts from random rows: averaged over the restarts it predicts as
# well as k-means++ (benchmarks/RESULTS.md, "bench_quality") in half the time.
INIT_PARAMS = "random_from_data"
FORMAT = "fastem.Recommender"
FORMAT_VERSION = 1
# The members of a recommender file (the sides' are optional).
MEMBERS = ("format", "format_version", "fastem_version", "settings", "global",
           "user_ids", "item_ids", "user_bias", "item_bias") + tuple(
    f"{side}_{part}" for side in ("users", "items")
    for part in ("weights", "means", "variance", "factors"))


class Scores(NamedTuple):
    """Errors of predicted ratings: root mean squared and mean absolute."""

    rmse: float
    mae: float


def prediction_scores(predicted, actual):
    """The :class:`Scores` of ``predicted`` ratings against the ``actual`` ones.

    Parameters
    ----------
    predicted, actual : array-like of shape (m,)

    Returns
    -------
    Scores
    """
    errors = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return Scores(float(np.sqrt(np.mean(errors * errors))), float(np.mean(np.abs(errors))))


class _Side(NamedTuple):
    """The mixtures of one side, one per restart, and their rows' posteriors.

    ``weights`` (R, K), ``means`` (R, K, n_columns), float32, ``variance``
    (the fixed one, a float) and ``factors`` (n_rows, R, K), float32: the
    posteriors of the training rows under each restart's final parameters.
    float32 halves the memory of the large arrays; predictions are summed in
    float64.
    """

    weights: np.ndarray
    means: np.ndarray
    variance: float
    factors: np.ndarray

    def correction(self, rows, cols):
        """The averaged correction g for (rows[p], cols[p]): known rows and columns."""
        n_restarts = self.weights.shape[0]
        out = np.zeros(rows.shape[0])
        step = 1 << 16
        for start in range(0, rows.shape[0], step):
            r, c = rows[start:start + step], cols[start:start + step]
            # sum_r sum_j post_r[row, j] * means_r[j, col], over the restarts.
            means = self.means[:, :, c].astype(np.float64)  # (R, K, m)
            out[start:start + step] = np.einsum("mrk,rkm->m", self.factors[r], means)
        return out / n_restarts

    def posteriors(self, data):
        """Posteriors (n_rows, R, K) of the rows of ``data`` under each restart."""
        n_restarts, n_components, _ = self.means.shape
        out = np.empty((data.n_samples, n_restarts, n_components), dtype=np.float32)
        for r in range(n_restarts):
            params = Params(self.means[r], np.full(n_components, self.variance),
                            self.weights[r])
            out[:, r] = estep(data, params)[0]
        return out

    def prior_correction(self, cols):
        """The correction of an unknown row (posterior = the weights) at ``cols``."""
        return np.einsum("rk,rkm->m", self.weights, self.means[:, :, cols]) / \
            self.weights.shape[0]


class Recommender(SettingsMixin):
    """Rating predictions from bias-centred MAP Gaussian mixtures on both sides.

    The prediction of user u's rating of item i is

    ``clip(mu + b_u + b_i + g_users[u, i] + g_items[i, u])``

    with ``mu`` the mean rating; ``b_u``, ``b_i`` the user and item offsets,
    regularised and fitted by alternating least squares; ``g_users`` the
    correction of a mixture of ``n_components`` Gaussians over the users'
    residuals ``r - mu - b_u - b_i`` (``sum_j post[u, j] * means[j, i]``,
    averaged over ``n_restarts`` fits), and ``g_items`` the same with the
    items as rows. Each mixture has a Normal prior on its means (towards 0,
    strength ``mean_prior_strength``) and one variance, fixed at
    ``variance_scale`` times the mean squared residual. The result is
    clipped to the range of the training ratings. An unknown user gets
    ``b_u = 0`` and the mixture weights as posterior; an unknown item gets
    ``b_i = 0`` and no correction. The defaults need no tuning; :meth:`tune`
    chooses ``n_components``, ``mean_prior_strength`` and ``variance_scale``
    on a validation part of the training ratings.

    Parameters
    ----------
    n_components : int, default=8
        Components of each side's mixture.
    sides : {'both', 'users', 'items'}, default='both'
        Which corrections to fit: both, or the users' or the items' alone.
    n_restarts : int, default=10
        Fits of each side, from ``random_state + r``, whose corrections are
        averaged.
    mean_prior_strength : float, default=10.0
        Strength of the prior on the means (a pseudo-count of zeros).
    variance_scale : float, default=1.5
        The fixed variance over the mean squared residual: a temperature (a
        small one makes the posteriors of users with many ratings one-hot).
    user_bias_strength, item_bias_strength : float, default=3.0 and 5.0
        Regularisation of the user and item offsets (pseudo-counts).
    bias_sweeps : int, default=20
        Alternating least-squares sweeps of the offsets, items first.
    tol : float, default=1e-4
        Relative tolerance of each EM fit (on the MAP objective).
    max_iter : int, default=200
        EM iterations per fit.
    clip : bool, default=True
        Clip predictions to the range of the training ratings.
    random_state : int or None, default=None
        Seed of the fits' initialisations (``'random_from_data'``: K random
        rows); None: NumPy's global random state.
    n_threads : int or None, default=None
        Threads of the compiled kernels; None: every core.
    backend : {None, 'cython', 'python'}, default=None
    verbose : int, default=0
        1: one line per side and restart on stderr.

    Attributes
    ----------
    global_mean_ : float
    user_ids_, item_ids_ : ndarray
        The ids of the rows and columns of the training matrix.
    user_bias_, item_bias_ : ndarray
    rating_range_ : tuple of float
        (smallest, largest) training rating.
    residual_variance_ : float
        Mean squared residual of the training ratings after the offsets.
    n_ratings_ : int
    """

    def __init__(self, n_components=8, *, sides="both", n_restarts=10,
                 mean_prior_strength=10.0, variance_scale=1.5, user_bias_strength=3.0,
                 item_bias_strength=5.0, bias_sweeps=20, tol=1e-4, max_iter=200,
                 clip=True, random_state=None, n_threads=None, backend=None, verbose=0):
        self.n_components = n_components
        self.sides = sides
        self.n_restarts = n_restarts
        self.mean_prior_strength = mean_prior_strength
        self.variance_scale = variance_scale
        self.user_bias_strength = user_bias_strength
        self.item_bias_strength = item_bias_strength
        self.bias_sweeps = bias_sweeps
        self.tol = tol
        self.max_iter = max_iter
        self.clip = clip
        self.random_state = random_state
        self.n_threads = n_threads
        self.backend = backend
        self.verbose = verbose

    def _check_settings(self):
        check_n_components(self.n_components)
        if self.sides not in SIDES:
            raise invalid("sides", self.sides, f"use one of {SIDES}")
        check_n_components(self.n_restarts, "n_restarts")
        check_mean_prior_strength(self.mean_prior_strength)
        check_positive(self.variance_scale, "variance_scale")
        check_non_negative(self.user_bias_strength, "user_bias_strength")
        check_non_negative(self.item_bias_strength, "item_bias_strength")
        check_n_components(self.bias_sweeps, "bias_sweeps")
        check_tol(self.tol)
        check_max_iter(self.max_iter)
        if not isinstance(self.clip, (bool, np.bool_)):
            raise invalid("clip", self.clip, "use True or False")
        check_random_state(self.random_state, self.n_restarts)
        check_n_threads(self.n_threads)
        check_backend(self.backend)
        check_verbose(self.verbose)

    # -- fitting --------------------------------------------------------------

    def fit(self, X, y=None, *, user_ids=None, item_ids=None, progress=None):
        """Fit the offsets and the mixtures to a rating matrix.

        Parameters
        ----------
        X : sparse matrix or ObservedData of shape (n_users, n_items)
            The stored entries are the ratings (explicit zeros included); the
            others are missing.
        y : ignored
        user_ids, item_ids : array-like, optional
            Ids of the rows and columns (strings or numbers); default: the
            row and column numbers.
        progress : callable, optional
            ``progress(step, n_steps, label)`` after the offsets and after
            each fit of a side.

        Returns
        -------
        self : Recommender
        """
        self._check_settings()
        if not (sp.issparse(X) or isinstance(X, ObservedData)):
            raise TypeError(f"X must be a scipy.sparse matrix of ratings (stored "
                            f"entries are ratings) or a fastem.ObservedData, got "
                            f"{type(X).__name__}; for (user, item, rating) triples "
                            "use fit_triples")
        data = as_observed(X, dtype=np.float64)
        if data.nnz == 0:
            raise ValueError("X holds no rating; there is nothing to fit")
        n_users, n_items = data.shape
        self.user_ids_ = _ids(user_ids, n_users, "user_ids")
        self.item_ids_ = _ids(item_ids, n_items, "item_ids")
        # Handed over, not kept here: the fit frees the ratings once it can.
        holder = [data]
        del data
        return self._fit_data(holder.pop(), progress)

    def fit_triples(self, users, items, ratings, *, progress=None):
        """Fit to (user, item, rating) triples with ids of any kind.

        Parameters
        ----------
        users, items : array-like of shape (n_ratings,)
            Ids (strings or numbers).
        ratings : array-like of shape (n_ratings,)
            Finite numbers.
        progress : callable, optional
            As in :meth:`fit`.

        Returns
        -------
        self : Recommender
            Fitted.

        Raises
        ------
        ValueError
            For arrays of different lengths, no rating, ratings that are not
            finite, or a (user, item) pair given twice.
        """
        users, items, ratings = _triples(users, items, ratings)
        user_ids, rows = np.unique(users, return_inverse=True)
        item_ids, cols = np.unique(items, return_inverse=True)
        matrix = _matrix(rows.ravel(), cols.ravel(), ratings, (user_ids.shape[0],
                                                               item_ids.shape[0]))
        return self.fit(matrix, user_ids=user_ids, item_ids=item_ids, progress=progress)

    def tune(self, X, y=None, *, user_ids=None, item_ids=None, validation_fraction=0.1,
             candidates=None, progress=None):
        """Choose ``variance_scale``, ``mean_prior_strength`` and ``n_components``, then fit.

        A random ``validation_fraction`` of the ratings (seeded by
        ``random_state``) is held out; the three settings are chosen one after
        the other, each by the lowest RMSE on the held-out ratings of fits on
        the rest (with at most 3 restarts, for speed), the others at their
        current or chosen values. The recommender is then fitted on all the
        ratings with the chosen settings. ``tuning_`` records every trial.

        Parameters
        ----------
        X, user_ids, item_ids, progress
            As in :meth:`fit`.
        y : ignored
        validation_fraction : float, default=0.1
            Share of the ratings held out, in (0, 1).
        candidates : dict of str to list, optional
            Values to try per setting; default ``{'variance_scale': [1, 1.5, 2,
            3], 'mean_prior_strength': [5, 10, 20], 'n_components': [4, 8,
            16]}``.

        Returns
        -------
        self : Recommender
        """
        self._check_settings()
        check_fraction(validation_fraction, "validation_fraction")
        grid = {"variance_scale": [1.0, 1.5, 2.0, 3.0],
                "mean_prior_strength": [5.0, 10.0, 20.0], "n_components": [4, 8, 16]}
        unknown = set(candidates or {}) - set(grid)
        if unknown:
            raise ValueError(f"candidates can only name {sorted(grid)}, not {sorted(unknown)}")
        grid.update(candidates or {})
        data = as_observed(X, dtype=np.float64)
        seed = self.random_state if is_int(self.random_state) else None
        held = np.random.RandomState(seed).random_sample(data.nnz) < validation_fraction
        if not held.any() or held.all():
            raise ValueError("the validation split is empty or takes every rating; change "
                             "validation_fraction")
        rows, cols = row_of_entry(data), data.indices.astype(np.intp)
        train = sp.csr_matrix((data.data[~held], (rows[~held], cols[~held])),
                              shape=data.shape)
        self.tuning_ = []
        for name, values in grid.items():
            errors = []
            for value in values:
                trial = Recommender(**{**self.get_params(), name: value, "verbose": 0,
                                       "n_restarts": min(3, self.n_restarts)})
                trial.fit(train)
                predicted = trial._predict_positions(rows[held], cols[held])
                errors.append(float(np.sqrt(np.mean((predicted - data.data[held]) ** 2))))
                self.tuning_.append({**{key: getattr(trial, key) for key in grid},
                                     "validation_rmse": errors[-1]})
                self._log(f"tune: {name}={value!r}: validation RMSE {errors[-1]:.4f}")
            setattr(self, name, values[int(np.argmin(errors))])
        return self.fit(X, user_ids=user_ids, item_ids=item_ids, progress=progress)

    def _fit_data(self, data, progress):
        """Fit everything to ``data`` (ObservedData), one side at a time.

        The fit keeps no copy of the ratings beyond the residuals, which
        replace them once the offsets are known, and their transpose for the
        items' side. That side's EM passes read the residuals by user, one
        column of its matrix after another (``fastem._pass.column_fused_pass``):
        its columns are the users, too many for their blocks to stay in cache
        when read once per rating.
        """
        start = time.perf_counter()
        shape, indices, indptr = data.shape, data.indices, data.indptr
        self.n_ratings_ = int(data.nnz)
        self.rating_range_ = (float(data.data.min()), float(data.data.max()))
        self.global_mean_ = float(data.data.mean())
        self.user_bias_, self.item_bias_ = _biases(
            data, self.global_mean_, self.user_bias_strength, self.item_bias_strength,
            self.bias_sweeps)
        residuals = _residuals(data, self.global_mean_, self.user_bias_, self.item_bias_)
        del data  # the ratings themselves are not needed any more
        self.residual_variance_ = float(np.dot(residuals, residuals) / residuals.shape[0])
        variance = max(self.variance_scale * self.residual_variance_, 1e-12)
        # The training ratings' pattern: what recommend() leaves out by default.
        self._training_pattern = sp.csr_matrix(
            (np.ones(indices.shape[0], dtype=np.int8), indices, indptr), shape=shape)
        sides = ("users", "items") if self.sides == "both" else (self.sides,)
        n_steps = 1 + len(sides) * self.n_restarts
        if progress is not None:
            progress(1, n_steps, "offsets")
        self._log(f"offsets: {self.bias_sweeps} sweeps, mean squared residual "
                  f"{self.residual_variance_:.4f} ({time.perf_counter() - start:.2f} s)")
        self.users_ = self.items_ = None
        step = 1
        by_user = ObservedData(residuals, indices, indptr, shape[1], copy=False)
        del residuals
        for side in sides:
            if side == "users":
                source = InMemorySource(by_user, backend=self.backend,
                                        n_threads=self.n_threads)
            else:
                by_item = sp.csr_matrix((by_user.data, indices, indptr),
                                        shape=shape).tocsc()
                matrix = ObservedData(by_item.data, by_item.indices, by_item.indptr,
                                      shape[0], copy=False)
                del by_item
                source = InMemorySource(matrix, backend=self.backend,
                                        n_threads=self.n_threads, columns=by_user)
                del matrix
            fitted = self._fit_side(source, variance, side, step, n_steps, progress)
            del source
            step += self.n_restarts
            setattr(self, f"{side}_", fitted)
        return self

    def _fit_side(self, source, variance, side, step, n_steps, progress):
        n_components = min(self.n_components, source.n_samples)
        weights = np.empty((self.n_restarts, n_components))
        means = np.empty((self.n_restarts, n_components, source.n_features),
                         dtype=np.float32)
        factors = np.empty((source.n_samples, self.n_restarts, n_components),
                           dtype=np.float32)
        for restart in range(self.n_restarts):
            start = time.perf_counter()
            seed = None if self.random_state is None else self.random_state + restart
            model = GaussianMixture(
                n_components, init_params=INIT_PARAMS, tol=self.tol,
                max_iter=self.max_iter, mean_prior_strength=self.mean_prior_strength,
                fixed_variance=variance, random_state=seed, n_threads=self.n_threads,
                backend=self.backend)
            _fit_quietly(model, source)
            weights[restart], means[restart] = model.weights_, model.means_
            factors[:, restart] = model.predict_proba(source)
            self._log(f"{side}: restart {restart + 1}/{self.n_restarts}, "
                      f"{model.n_iter_} iterations ({time.perf_counter() - start:.2f} s)")
            del model
            if progress is not None:
                progress(step + restart + 1, n_steps, f"{side} {restart + 1}")
        return _Side(weights, means, float(variance), factors)

    def _log(self, message):
        if self.verbose:
            print(f"[Recommender] {message}", file=sys.stderr, flush=True)

    # -- predictions ----------------------------------------------------------

    def _check_fitted(self, method):
        if not hasattr(self, "global_mean_"):
            raise not_fitted_error(type(self).__name__, method)

    @staticmethod
    def _positions(ids, known):
        """Positions of ``ids`` in ``known``; -1 where absent (see :func:`_comparable`)."""
        ids, known = _comparable(np.asarray(ids).ravel(), known)
        order = np.argsort(known, kind="stable")
        sorted_ids = known[order]
        if sorted_ids.shape[0] == 0:
            return np.full(ids.shape[0], -1, dtype=np.intp)
        where = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.shape[0] - 1)
        return np.where(sorted_ids[where] == ids, order[where], -1).astype(np.intp)

    def predict(self, users, items):
        """Predicted ratings of the pairs (users[p], items[p]).

        Parameters
        ----------
        users, items : array-like of shape (n_pairs,)
            Ids as in training; unknown ids are allowed.

        Returns
        -------
        ndarray of shape (n_pairs,), float64
            Finite for every pair: an unknown user gets the mean user and
            the mixtures' weights, an unknown item the mean item and no
            correction.
        """
        self._check_fitted("predict")
        users, items = np.asarray(users), np.asarray(items)
        if users.shape != items.shape:
            raise ValueError(f"users and items must have the same shape, got "
                             f"{users.shape} and {items.shape}")
        shape = users.shape
        rows = self._positions(users, self.user_ids_)
        cols = self._positions(items, self.item_ids_)
        return self._predict_positions(rows, cols).reshape(shape)

    def _predict_positions(self, rows, cols):
        known_user, known_item = rows >= 0, cols >= 0
        prediction = np.full(rows.shape[0], self.global_mean_)
        prediction[known_user] += self.user_bias_[rows[known_user]]
        prediction[known_item] += self.item_bias_[cols[known_item]]
        both = known_user & known_item
        if self.users_ is not None:
            prediction[both] += self.users_.correction(rows[both], cols[both])
            new_user = ~known_user & known_item
            prediction[new_user] += self.users_.prior_correction(cols[new_user])
        if self.items_ is not None:
            prediction[both] += self.items_.correction(cols[both], rows[both])
        if self.clip:
            np.clip(prediction, *self.rating_range_, out=prediction)
        return prediction

    def score(self, users, items, ratings):
        """RMSE and MAE of the predictions of known ratings.

        Parameters
        ----------
        users, items : array-like of shape (n_ratings,)
            Ids, as for :meth:`predict`.
        ratings : array-like of shape (n_ratings,)
            The true ratings.

        Returns
        -------
        Scores
            ``(rmse, mae)``: root mean squared and mean absolute error.
        """
        return prediction_scores(self.predict(users, items), ratings)

    def fold_in(self, users, items, ratings):
        """Let the ratings of users inform their predictions, without a refit.

        Each user of the triples gets an offset from these ratings (the item
        offsets fixed) and a posterior under each of the users' mixtures from
        their residuals, as in training; a user the model did not know is
        added. Ratings of items the model does not know are ignored. The
        items' mixtures are not changed: a new user is a column they never
        saw, with correction 0 there.

        Parameters
        ----------
        users, items : array-like of shape (n_ratings,)
            Ids.
        ratings : array-like of shape (n_ratings,)
            The users' ratings of the items, finite numbers.

        Returns
        -------
        self : Recommender
            With the users' offsets and posteriors updated or added.
        """
        self._check_fitted("fold_in")
        users, items, ratings = _triples(users, items, ratings)
        cols = self._positions(items, self.item_ids_)
        keep = cols >= 0
        ids, rows = np.unique(users[keep], return_inverse=True)
        data = as_observed(_matrix(rows.ravel(), cols[keep], ratings[keep],
                                   (ids.shape[0], self.item_ids_.shape[0])))
        centred = data.data - self.global_mean_ - self.item_bias_[data.indices]
        counts = np.diff(data.indptr)
        sums = np.bincount(row_of_entry(data), centred, minlength=ids.shape[0])
        bias = sums / (self.user_bias_strength + counts)
        positions = self._add_users(ids)
        self.user_bias_[positions] = bias
        if self.users_ is not None:
            residuals = ObservedData(centred - np.repeat(bias, counts), data.indices,
                                     data.indptr, data.n_features, copy=False)
            self.users_.factors[positions] = self.users_.posteriors(residuals)
        return self

    def _add_users(self, ids):
        """Positions of ``ids`` among the users, adding those not known yet."""
        positions = self._positions(ids, self.user_ids_)
        new = positions < 0
        n_new = int(new.sum())
        if not n_new:
            return positions
        new_ids, known = _comparable(ids[new], self.user_ids_)
        positions[new] = np.arange(known.shape[0], known.shape[0] + n_new)
        self.user_ids_ = np.concatenate([known, new_ids])
        self.user_bias_ = np.concatenate([self.user_bias_, np.zeros(n_new)])
        if self.users_ is not None:
            factors = self.users_.factors
            self.users_ = self.users_._replace(factors=np.concatenate(
                [factors, np.zeros((n_new,) + factors.shape[1:], dtype=np.float32)]))
        if self.items_ is not None:
            means = self.items_.means
            self.items_ = self.items_._replace(means=np.concatenate(
                [means, np.zeros(means.shape[:2] + (n_new,))], axis=2))
        self._training_pattern = None
        return positions

    def recommend(self, users, n=10, *, exclude=None):
        """The ``n`` items of highest predicted rating for each user, rated items left out.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            Ids; an unknown user gets the recommendations of the mean user.
        n : int, default=10
            Number of items per user.
        exclude : tuple of array-like (users, items), optional
            Pairs never recommended (the ratings already given). Default:
            the training ratings, when the model was fitted in this process
            (a loaded model recommends every item unless told).

        Returns
        -------
        list of (items, scores)
            One pair per user: the ids of at most ``n`` items, best first,
            and their predicted ratings (fewer than ``n`` when the user has
            rated all but fewer than ``n`` items).
        """
        self._check_fitted("recommend")
        check_n_components(n, "n")
        users = np.asarray(users).ravel()
        rows = self._positions(users, self.user_ids_)
        n_items = self.item_ids_.shape[0]
        rated = self._rated(exclude)
        all_items = np.arange(n_items)
        out = []
        for row in rows.tolist():
            scores = self._predict_positions(np.full(n_items, row), all_items)
            candidates = all_items
            if row >= 0 and rated is not None and row < rated.shape[0]:
                seen = rated.indices[rated.indptr[row]:rated.indptr[row + 1]]
                candidates = np.setdiff1d(all_items, seen, assume_unique=True)
            best = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
            out.append((self.item_ids_[best], scores[best]))
        return out

    def _rated(self, exclude):
        """CSR (users x items, pattern only) of the pairs not to recommend."""
        if exclude is None:
            return getattr(self, "_training_pattern", None)
        users, items = (np.asarray(a).ravel() for a in exclude)
        rows = self._positions(users, self.user_ids_)
        cols = self._positions(items, self.item_ids_)
        keep = (rows >= 0) & (cols >= 0)
        return sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])),
                             shape=(self.user_ids_.shape[0], self.item_ids_.shape[0]))

    # -- model files ----------------------------------------------------------

    def save(self, path):
        """Write the fitted recommender to a ``.npz`` file of plain arrays.

        It loads with :func:`fastem.load` (``allow_pickle=False``); the
        members are listed in the user guide's page "Model files".

        Parameters
        ----------
        path : str, path-like or binary file object
            Written as named (no suffix is added).
        """
        self._check_fitted("save")
        settings = {name: value for name, value in self.get_params().items()}
        members = {
            "format": np.array(FORMAT),
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "fastem_version": np.array(__version__),
            "settings": np.array(json.dumps(settings, sort_keys=True)),
            "global": np.array([self.global_mean_, *self.rating_range_,
                                self.residual_variance_, self.n_ratings_]),
            "user_ids": labels_array(self.user_ids_, "user_ids"),
            "item_ids": labels_array(self.item_ids_, "item_ids"),
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
        }
        for name in ("users", "items"):
            side = getattr(self, f"{name}_")
            if side is not None:
                members[f"{name}_weights"] = side.weights
                members[f"{name}_means"] = side.means
                members[f"{name}_variance"] = np.array(side.variance)
                members[f"{name}_factors"] = side.factors
        write_members(path, members)


def load_recommender(members):
    """A Recommender from the members of its file (see ``fastem.load``), checked."""
    for name in ("format_version", "settings", "global", "user_ids", "item_ids"):
        if name not in members:
            raise ModelFileError(f"recommender file lacks the member {name!r}")
    version = members["format_version"]
    if version.shape != () or version.dtype.kind not in "iu" or not (
            1 <= int(version) <= FORMAT_VERSION):
        raise ModelFileError("recommender file format version is not supported by this "
                             "fastem; upgrade fastem")
    try:
        settings = json.loads(str(members["settings"]))
        model = Recommender(**settings)
        model._check_settings()
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"invalid settings in recommender file: {exc}") from None
    values = members["global"]
    if values.shape != (5,) or not np.isfinite(values).all():
        raise ModelFileError("recommender file member 'global' is invalid")
    model.global_mean_ = float(values[0])
    model.rating_range_ = (float(values[1]), float(values[2]))
    model.residual_variance_ = float(values[3])
    model.n_ratings_ = int(values[4])
    try:
        model.user_ids_ = labels_array(members["user_ids"], "user_ids")
        model.item_ids_ = labels_array(members["item_ids"], "item_ids")
    except ValueError as exc:
        raise ModelFileError(f"invalid ids in recommender file: {exc}") from None
    n_users, n_items = model.user_ids_.shape[0], model.item_ids_.shape[0]
    model.user_bias_ = _member(members, "user_bias", (n_users,))
    model.item_bias_ = _member(members, "item_bias", (n_items,))
    for name, (n_rows, n_columns) in (("users", (n_users, n_items)),
                                      ("items", (n_items, n_users))):
        if f"{name}_weights" not in members:
            setattr(model, f"{name}_", None)
            continue
        weights = _member(members, f"{name}_weights", None)
        if weights.ndim != 2:
            raise ModelFileError(f"recommender file member '{name}_weights' must be 2-D")
        n_restarts, n_components = weights.shape
        means = _member(members, f"{name}_means", (n_restarts, n_components, n_columns))
        variance = _member(members, f"{name}_variance", ())
        factors = _member(members, f"{name}_factors", (n_rows, n_restarts, n_components))
        if not variance > 0 or (weights < 0).any():
            raise ModelFileError(f"recommender file holds invalid {name} mixtures")
        setattr(model, f"{name}_", _Side(weights, means, float(variance),
                                         factors.astype(np.float32)))
    return model


def _member(members, name, shape):
    if name not in members:
        raise ModelFileError(f"recommender file lacks the member {name!r}")
    array = members[name]
    if array.dtype.kind != "f" or not np.isfinite(array).all():
        raise ModelFileError(f"recommender file member {name!r} must hold finite floats")
    if shape is not None and array.shape != shape:
        raise ModelFileError(f"recommender file member {name!r} has shape {array.shape}, "
                             f"expected {shape}")
    return array.astype(np.float64) if array.dtype != np.float32 else array


# ---------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------

def _comparable(ids, known):
    """``ids`` and ``known`` in one dtype: numbers as numbers, else both as strings."""
    numeric = "iufb"
    if ids.dtype.kind in numeric and known.dtype.kind in numeric:
        return ids, known
    if ids.dtype.kind == known.dtype.kind == "U":
        return ids, known
    return ids.astype(str), known.astype(str)


def _ids(ids, size, name):
    if ids is None:
        return np.arange(size)
    return labels_array(ids, name, size)


def _triples(users, items, ratings):
    users, items = np.asarray(users).ravel(), np.asarray(items).ravel()
    ratings = np.asarray(ratings, dtype=np.float64).ravel()
    if not users.shape == items.shape == ratings.shape:
        raise ValueError(f"users, items and ratings must have the same length, got "
                         f"{users.shape[0]}, {items.shape[0]} and {ratings.shape[0]}")
    if users.shape[0] == 0:
        raise ValueError("no rating given; there is nothing to fit")
    if not np.isfinite(ratings).all():
        raise ValueError("ratings must be finite numbers")
    return users, items, ratings


def _matrix(rows, cols, ratings, shape):
    """CSR of ratings at (rows, cols), refusing a pair given twice."""
    rows, cols, ratings, n_repeated, k = sort_entries(rows, cols, ratings)
    if n_repeated:
        raise ValueError(f"{n_repeated} (user, item) pair(s) are given more than "
                         f"once, the first at user index {rows[k]}, item index {cols[k]}; "
                         "keep one rating per pair")
    return sp.csr_matrix((ratings, (rows, cols)), shape=shape)


def _biases(data, mean, user_strength, item_strength, sweeps):
    """Regularised offsets by alternating least squares from zero, items first.

    Sparse products over the ratings: no temporary of one value per rating
    beyond the pattern's ones.
    """
    ones = sp.csr_matrix((np.ones(data.nnz), data.indices, data.indptr), shape=data.shape)
    ratings = sp.csr_matrix((data.data, data.indices, data.indptr), shape=data.shape)
    user_counts = np.diff(data.indptr).astype(np.float64)
    item_counts = np.asarray(ones.sum(axis=0)).ravel()
    user_sums = ratings @ np.ones(data.n_features) - mean * user_counts
    item_sums = ratings.T @ np.ones(data.n_samples) - mean * item_counts
    user_bias = np.zeros(data.n_samples)
    item_bias = np.zeros(data.n_features)
    with np.errstate(invalid="ignore", divide="ignore"):
        for _ in range(sweeps):
            item_bias = (item_sums - ones.T @ user_bias) / (item_strength + item_counts)
            user_bias = (user_sums - ones @ item_bias) / (user_strength + user_counts)
    # A user or item with no rating and no regularisation gets 0, not NaN.
    return np.nan_to_num(user_bias), np.nan_to_num(item_bias)


def _residuals(data, mean, user_bias, item_bias):
    """``r - mean - b_u - b_i`` for every rating, computed by blocks of rows."""
    out = np.empty(data.nnz)
    for first, last in row_blocks(data.indptr, 1 << 20):
        start, stop = data.indptr[first], data.indptr[last]
        block = out[start:stop]
        np.subtract(data.data[start:stop], mean, out=block)
        block -= np.repeat(user_bias[first:last], np.diff(data.indptr[first:last + 1]))
        block -= item_bias[data.indices[start:stop]]
    return out


def _fit_quietly(model, source):
    with warnings.catch_warnings():
        # A restart that ends at max_iter is still averaged in.
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(source)
