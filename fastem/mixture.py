"""The estimator: :class:`GaussianMixture`, in scikit-learn's conventions.

It checks its settings (``fastem._validation``), turns ``X`` into a data
source (``fastem._input.as_source``: in memory or on Dask, the same methods),
picks the initial parameters (``fastem._init``) and hands each restart to the
EM driver (``fastem._em.run_em``) in one call; the driver owns the
iterations. Every prediction is one call of the source. Nothing here imports
scikit-learn, except ``__sklearn_tags__``, which scikit-learn itself calls.
"""

import math
import sys
import time
import warnings

import numpy as np

from . import _persist
from ._base import SettingsMixin
from ._em import MeanPrior, run_em
from ._exceptions import ConvergenceWarning, ModelFileError, not_fitted_error
from ._init import initial_params
from ._input import as_source
from ._predictions import COMPLETED, LABELS, POSTERIORS, ROW_LOGLIK
from ._validation import Params, Settings, check_fit_data, check_initial, is_int, is_real
from ._version import __version__

__all__ = ["GaussianMixture", "load", "model_from_content"]


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------

class _IterationLog:
    """``verbose >= 1``: one line per EM iteration, on stderr."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.previous = None
        self.clock = time.perf_counter()

    def __call__(self, iteration, log_likelihood):
        now = time.perf_counter()
        change = math.nan if self.previous is None else log_likelihood - self.previous
        print(f"{self.prefix}iteration {iteration:5d}  log-likelihood "
              f"{log_likelihood:.12g}  change {change:.4g}  {now - self.clock:.3f} s",
              file=sys.stderr, flush=True)
        self.previous = log_likelihood
        self.clock = now


def _log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------

class GaussianMixture(SettingsMixin):
    """Gaussian mixture fitted by exact EM on partially observed data.

    A scikit-learn-style estimator for matrices with missing entries: the
    missing coordinates of each row are marginalised out, so a row counts
    only through its observed entries, and only those are ever visited (one
    pass over them per EM iteration, O(nnz * K) time).

    **Input.** ``X`` may be

    - a dense array: entries equal to ``missing_values`` are missing (NaN by
      default; ``missing_values=0`` reads the course's files);
    - a scipy.sparse matrix or array of any format: **the stored entries are
      the observed ones, explicit zeros included, and entries that are not
      stored are missing** (not zero, unlike most libraries);
    - a :class:`fastem.ObservedData` (used as it is, no copy);
    - a ``dask.array.Array`` chunked along rows (NumPy or scipy.sparse
      chunks, read as above) or a ``dask.dataframe.DataFrame`` of (row, col,
      value) triples (see ``fastem.dask.from_triples``): fitted where its
      blocks live, on whatever Dask scheduler is active, each block's pass
      on ``n_threads`` threads (default 1); the predictions are then lazy
      Dask arrays (see the user guide's page "Dask").

    The same data in any of these forms gives the same fit. Integer input is
    read as float64; float32 input stays float32 (half the memory). Dense
    input is copied once, into the compact form of its observed entries;
    CSR input once into that form, never per iteration.

    Parameters
    ----------
    n_components : int, default=1
        Number of components K, between 1 and the number of rows.
    covariance_type : {'spherical', 'diag'}, default='spherical'
        'spherical': one variance per component (the course's model);
        'diag': one variance per component and column.
    tol : float, default=1e-6
        Relative tolerance, as in the course: EM stops when
        ``LL_new - LL_old <= tol * |LL_new|`` for the log-likelihoods of
        successive E-steps. ``tol=0`` runs ``max_iter`` iterations unless
        the log-likelihood stops increasing.
    max_iter : int, default=1000
        Maximum number of EM iterations per restart; a restart that ends
        there unconverged raises a :class:`ConvergenceWarning` (when it is
        the one kept).
    n_init : int, default=1
        Number of restarts; the one with the highest final log-likelihood is
        kept.
    init_params : {'k-means++', 'random_from_data', 'course'}, default='k-means++'
        How each restart picks its initial parameters:

        - 'k-means++': k-means++ seeding over the observed entries (each
          centre a data row, its missing entries set to the column means),
          then up to 10 k-means iterations; weights and variances from the
          final clusters. The default (see Notes).
        - 'random_from_data': K distinct random rows, their missing entries
          set to the column means; variances = mean squared deviation of
          all observed entries from each mean; equal weights.
        - 'course': the MIT 6.86x rule (docs/model.md, section 3), for reproducing the
          course's results: K random rows taken as they are with missing
          entries as 0, variance = mean over all n * d entries of (X - mu)^2
          with missing entries as 0 ('diag': per column, over all n rows),
          equal weights. With an int
          ``random_state`` the rows are ``np.random.RandomState(seed).choice(
          n, K, replace=False)``, exactly what the course's
          ``np.random.seed(seed); np.random.choice(n, K, replace=False)``
          draws (NumPy's global state is left alone).
    min_variance : float, default=0.25
        Floor of every variance after each M-step (the course's value; 0
        turns it off). A mean coordinate (diag: and its variance) moves only
        where its soft count reaches 1, as in the course.
    mean_prior_strength : float, default=0.0
        MAP fitting (docs/model.md, section 8): a Normal prior on each mean
        coordinate, ``mu[j, i] ~ N(mean_prior[i], var_j / strength)``, so the
        M-step's mean is ``(sum_u post x + strength * mean_prior) / (sum_u
        post + strength)`` over the rows observing the column, in every
        column (a column nobody observed gets the prior mean). It replaces
        the course's "soft count >= 1" rule and makes many components safe
        on sparse data. 0: no prior (the course's rule).
    mean_prior : float or array-like of shape (n_features,), default=0.0
        The prior mean of every component (used with a strength > 0).
    fixed_variance : float or None, default=None
        A variance every component keeps, shared and held fixed through EM
        (spherical and diag alike; ``min_variance`` does not apply to it).
        It acts as a temperature: fitted variances make the posteriors of
        rows with many entries one-hot. None: variances are fitted.
    missing_values : float or None, default=np.nan
        Marker of missing entries in dense input (NaN matches NaN); None:
        nothing is missing. Ignored for sparse input.
    weights_init : array-like of shape (K,), default=None
        Initial weights (non-negative, summing to 1); replaces those of
        ``init_params`` when given.
    means_init : array-like of shape (K, d), default=None
        Initial means; replaces those of ``init_params`` when given.
    variances_init : array-like of shape (K,) or (K, d), default=None
        Initial variances (by ``covariance_type``); replaces those of
        ``init_params`` when given.
    random_state : int, numpy.random.RandomState or None, default=None
        Randomness of the initialisation. An int makes fits reproducible:
        restart r draws from ``RandomState(random_state + r)``, so
        ``n_init=5, random_state=0, init_params='course'`` runs the course's
        seeds 0 to 4. None uses NumPy's global RandomState.
    warm_start : bool, default=False
        If True and the estimator is fitted, ``fit`` continues EM from the
        fitted parameters (one run; ``n_init`` and ``init_params`` unused).
    n_threads : int or None, default=None
        Threads of the compiled kernels, at most 1024; None:
        ``OMP_NUM_THREADS`` or all cores.
    backend : {None, 'cython', 'python'}, default=None
        Kernel backend; None: the compiled one when available (see
        ``fastem.backend_info``).
    verbose : int, default=0
        1: one line per EM iteration on stderr (iteration, log-likelihood,
        change, seconds); 2: also a summary of each restart.

    Attributes
    ----------
    weights_ : ndarray of shape (K,), float64
        Mixing weights.
    means_ : ndarray of shape (K, d), float64
        Component means.
    variances_ : ndarray of shape (K,) or (K, d), float64
        Variances: (K,) for 'spherical', (K, d) for 'diag'.
    converged_ : bool
        Whether the kept restart met the ``tol`` criterion.
    n_iter_ : int
        EM iterations of the kept restart.
    log_likelihood_ : float
        Total log-likelihood of the training data in the final E-step, that
        is under the parameters before the final M-step (the course's
        convention; the change in between is below ``tol``).
    lower_bound_ : float
        ``log_likelihood_`` per row (scikit-learn's attribute).
    n_features_in_ : int
        Number of columns seen by ``fit``.

    Notes
    -----
    Default initialisation. On synthetic ratings (``benchmarks/bench_init.py``:
    90% of the ratings fitted, scored on the 10% held out; figures in the
    user guide's page on the mixture), 'k-means++' finds planted groups that
    single rows reveal from every seed, in a few EM iterations, where random
    rows do not; on Netflix-shaped matrices the two reach the best optimum
    from a similar minority of seeds (random rows ahead by 0.01-0.02 nats per
    rating on average, within the spread of the seeds). Hence 'k-means++' for dense and
    sparse input alike, and ``n_init >= 3`` on large sparse data. 'course'
    (means 0 on unrated items) is far behind on rating data and exists to
    reproduce the course.

    The score of a component is ``log(p_j + 1e-16) - ...``, as in the
    course, so a component of weight 0 stays finite.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from fastem import GaussianMixture
    >>> X = np.array([[1., np.nan, 3.], [1.2, 2., np.nan], [5., 5., np.nan],
    ...               [np.nan, 5.2, 4.9]])
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> gm.predict(X).shape, gm.fill(X).shape
    ((4,), (4, 3))
    """

    def __init__(self, n_components=1, *, covariance_type="spherical", tol=1e-6,
                 max_iter=1000, n_init=1, init_params="k-means++", min_variance=0.25,
                 mean_prior_strength=0.0, mean_prior=0.0, fixed_variance=None,
                 missing_values=np.nan, weights_init=None, means_init=None,
                 variances_init=None, random_state=None, warm_start=False,
                 n_threads=None, backend=None, verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.min_variance = min_variance
        self.mean_prior_strength = mean_prior_strength
        self.mean_prior = mean_prior
        self.fixed_variance = fixed_variance
        self.missing_values = missing_values
        self.weights_init = weights_init
        self.means_init = means_init
        self.variances_init = variances_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.backend = backend
        self.verbose = verbose

    # -- scikit-learn protocol ------------------------------------------------

    def __sklearn_is_fitted__(self):
        return hasattr(self, "means_")

    def __sklearn_tags__(self):
        # Called by scikit-learn only, so importing it here costs nothing otherwise.
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=True, sparse=True),
        )

    # -- fitting --------------------------------------------------------------

    def fit(self, X, y=None, *, progress=None):
        """Fit the mixture by EM, keeping the best of ``n_init`` restarts.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).
            Dense: ``missing_values`` marks missing entries. Sparse: stored
            entries are observed (explicit zeros included), the others missing.
            Dask: row blocks persisted on the workers for the fit.
        y : ignored
        progress : callable, optional
            Follows the fit: ``progress(restart, n_restarts)`` is called as
            each restart starts (``restart`` 0-based, None for a warm start)
            and may return a callable, then called as
            ``callback(iteration, log_likelihood)`` after each EM iteration
            of that restart. Not a setting: it is neither saved nor cloned.

        Returns
        -------
        self : GaussianMixture

        Raises
        ------
        ValueError
            For an invalid setting, or X that is malformed (see the user
            guide's page "Guarantees"), has no observed entry, fewer rows than
            ``n_components``, or values whose squares overflow float64; and
            when a component collapses onto identical points with
            ``min_variance=0``.
        TypeError
            For X that does not hold numbers.
        """
        self._fit(X, progress)
        return self

    def fit_predict(self, X, y=None, *, progress=None):
        """Fit, then return the most probable component of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).
        y : ignored
        progress : callable, optional
            As in :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            A lazy Dask array for Dask input.
        """
        source = self._fit(X, progress)
        return source.map_rows(self._params(), LABELS)

    def _fit(self, X, progress):
        settings = Settings(self.get_params())
        # Dask: row blocks built and persisted on the workers, for the whole fit.
        source = as_source(X, missing_values=settings.missing_values,
                           backend=settings.backend, n_threads=settings.n_threads,
                           for_fit=True)
        n, d = source.shape
        check_fit_data(n, d, source.nnz, source.max_abs)
        if settings.n_components > n:
            raise ValueError(
                f"n_components={settings.n_components} must be <= n_samples={n}, the "
                "number of rows of X; lower n_components or pass more rows")
        source.check_fit_memory(settings.n_components, settings.covariance_type == "diag")
        continuing = settings.warm_start and self.__sklearn_is_fitted__()
        if continuing:
            self._check_warm_start(settings, d)
            starts = [None]
        else:
            starts = range(settings.n_init)
        prior = None
        if settings.mean_prior_strength > 0:
            mean = settings.mean_prior
            if np.ndim(mean):
                mean = check_initial(mean, (d,), "mean_prior")
            prior = MeanPrior(settings.mean_prior_strength, mean)
        best = None
        for restart in starts:
            result = self._run_restart(source, settings, restart, len(starts), progress,
                                       prior)
            if best is None or result.log_likelihood > best.log_likelihood:
                best, best_restart = result, restart
        if settings.verbose >= 2 and len(starts) > 1:
            _log(f"kept restart {best_restart + 1} (log-likelihood "
                 f"{best.log_likelihood:.12g})")
        self.weights_ = best.params.weights
        self.means_ = best.params.means
        self.variances_ = best.params.variances
        self.converged_ = bool(best.converged)
        self.n_iter_ = int(best.n_iter)
        self.log_likelihood_ = float(best.log_likelihood)
        self.lower_bound_ = self.log_likelihood_ / n
        self.n_features_in_ = d
        if not best.converged:
            warnings.warn(
                f"EM did not converge in max_iter={settings.max_iter} iterations "
                f"(tol={settings.tol:g}); increase max_iter or tol, or try another "
                "initialisation", ConvergenceWarning, stacklevel=3)
        return source

    def _check_warm_start(self, settings, n_features):
        fitted = self.means_.shape
        diag = np.ndim(self.variances_) == 2
        if (fitted != (settings.n_components, n_features)
                or diag != (settings.covariance_type == "diag")):
            raise ValueError(
                f"warm_start=True continues the previous fit (K={fitted[0]}, "
                f"{fitted[1]} columns, covariance_type="
                f"{'diag' if diag else 'spherical'!r}), which does not match these "
                "settings and data; set warm_start=False to start afresh")

    def _initial(self, source, settings, restart):
        K, d = settings.n_components, source.n_features
        given = (self.means_init, self.variances_init, self.weights_init)
        if any(value is None for value in given):
            means, variances, weights = initial_params(
                source, K, settings.init_params, settings.restart_random_state(restart),
                covariance_type=settings.covariance_type,
                min_variance=settings.min_variance)
        if self.means_init is not None:
            means = check_initial(self.means_init, (K, d), "means_init")
        if self.variances_init is not None:
            shape = (K, d) if settings.covariance_type == "diag" else (K,)
            variances = check_initial(self.variances_init, shape, "variances_init")
        if self.weights_init is not None:
            weights = check_initial(self.weights_init, (K,), "weights_init")
        if settings.fixed_variance is not None:
            variances = np.full(np.shape(variances), settings.fixed_variance)
        return Params(means, variances, weights)

    def _run_restart(self, source, settings, restart, n_restarts, progress, prior):
        continuing = restart is None
        label = "warm start" if continuing else f"restart {restart + 1}/{n_restarts}"
        callback = None if progress is None else progress(restart, n_restarts)
        start = time.perf_counter()
        params = self._params() if continuing else self._initial(source, settings, restart)
        init_seconds = time.perf_counter() - start
        if settings.verbose >= 2:
            how = "fitted parameters" if continuing else f"init {settings.init_params!r}"
            _log(f"{label}: {how} ({init_seconds:.3f} s)")
        if settings.verbose >= 1:
            callback = _IterationLog(f"[{label}] " if n_restarts > 1 else "")
        result = run_em(source, params, tol=settings.tol, max_iter=settings.max_iter,
                        min_variance=settings.min_variance, prior=prior,
                        fixed_variance=settings.fixed_variance, callback=callback)
        if settings.verbose >= 2:
            status = "converged" if result.converged else "not converged"
            _log(f"{label}: log-likelihood {result.log_likelihood:.12g}, "
                 f"{result.n_iter} iterations, {status}, "
                 f"{time.perf_counter() - start:.3f} s")
        return result

    # -- prediction -----------------------------------------------------------

    def _params(self):
        return Params(self.means_, self.variances_, self.weights_)

    def _source(self, X, method):
        """The data source of ``X``, checked against the fitted model."""
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error(type(self).__name__, method)
        source = as_source(X, missing_values=self.missing_values, backend=self.backend,
                           n_threads=self.n_threads, n_features=self.n_features_in_)
        if source.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {source.n_features} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input")
        return source

    def predict_proba(self, X):
        """Posterior probability of each component for each row.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).

        Returns
        -------
        post : ndarray of shape (n_samples, n_components), float64
            Rows sum to 1; a row with no observed entry gets the weights. A
            lazy Dask array for Dask input.
        """
        return self._source(X, "predict_proba").map_rows(self._params(), POSTERIORS)

    def predict(self, X):
        """Most probable component of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
            A lazy Dask array for Dask input.
        """
        return self._source(X, "predict").map_rows(self._params(), LABELS)

    def score_samples(self, X):
        """Log-likelihood of each row over its observed entries.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).

        Returns
        -------
        log_prob : ndarray of shape (n_samples,), float64
            ``log p(x_u)`` with the missing coordinates marginalised out
            (0 for a row with no observed entry). A lazy Dask array for Dask
            input.
        """
        return self._source(X, "score_samples").map_rows(self._params(), ROW_LOGLIK)

    def score(self, X, y=None):
        """Mean per-row log-likelihood of ``X`` (higher is better).

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).
        y : ignored

        Returns
        -------
        float
        """
        log_likelihood, n = self._total_loglik(X, "score")
        return log_likelihood / n

    def _n_parameters(self):
        K, d = self.means_.shape
        variances = self.variances_.size  # K (spherical) or K * d (diag)
        return K * d + variances + K - 1

    def _total_loglik(self, X, method):
        return self._source(X, method).total_log_likelihood(self._params())

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better).

        ``-2 LL + p ln(n)``, scikit-learn's convention, with LL the total
        log-likelihood of ``X``, n its number of rows and p the number of
        free parameters: K*d + K + (K - 1) for 'spherical', 2*K*d + (K - 1)
        for 'diag'. (The course's ``bic`` is ``LL - p/2 ln(n)``, higher is
        better: for the same LL it equals ``-bic(X) / 2``.)

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).

        Returns
        -------
        float
        """
        log_likelihood, n = self._total_loglik(X, "bic")
        return -2.0 * log_likelihood + self._n_parameters() * math.log(n)

    def aic(self, X):
        """Akaike information criterion on ``X``: ``-2 LL + 2 p`` (lower is better).

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).

        Returns
        -------
        float
        """
        log_likelihood, _ = self._total_loglik(X, "aic")
        return -2.0 * log_likelihood + 2.0 * self._n_parameters()

    def fill(self, X):
        """The completed matrix: observed entries kept, missing ones predicted.

        A missing entry (u, i) becomes its posterior mean
        ``sum_j post[u, j] * means_[j, i]`` (the course's ``fill_matrix``).

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            Dense, float32 for float32 input, else float64. For large sparse
            input use :meth:`predict_entries` instead. A lazy Dask array,
            chunked as the rows of X, for Dask input.
        """
        return self._source(X, "fill").map_rows(self._params(), COMPLETED)

    def predict_entries(self, X, rows, cols):
        """Entries (rows[p], cols[p]) of the completed matrix, and only those.

        The same values as ``fill(X)[rows, cols]`` without a dense result:
        the posterior mean for a missing entry, the value itself for an
        observed one. Only the listed rows go through the E-step.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).
        rows, cols : array-like of int, same shape
            Row and column of each wanted entry.

        Returns
        -------
        values : ndarray of the shape of ``rows``
            float32 for float32 input, else float64; computed for Dask input,
            each entry on the worker holding its row.
        """
        source = self._source(X, "predict_entries")
        return source.entries(self._params(), rows, cols).reshape(np.shape(rows))

    # -- model files ----------------------------------------------------------

    def save(self, path, *, row_labels=None, column_labels=None):
        """Write the fitted model to a ``.npz`` file (see ``fastem._persist``).

        The file holds the parameters, the settings, fastem's version and
        optional labels, as plain arrays: :func:`fastem.load` reads it with
        ``allow_pickle=False``, so a model file cannot run code.

        Parameters
        ----------
        path : str, path-like or binary file object
            Written as named (no suffix is added).
        row_labels : array-like of shape (m,), str or numbers, optional
            E.g. the user ids of the training rows. Defaults to the labels
            of a loaded model.
        column_labels : array-like of shape (n_features,), str or numbers, optional
            E.g. the item ids. Defaults to the labels of a loaded model.
        """
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error(type(self).__name__, "save")
        params = self.get_params()
        initial = {name: params.pop(name) for name in _persist.INITIAL}
        if np.ndim(params["mean_prior"]):  # an array: a member of its own
            initial["mean_prior"] = params.pop("mean_prior")
        initial = {name: value for name, value in initial.items() if value is not None}
        settings = {name: _plain(value) for name, value in params.items()}
        if isinstance(self.random_state, np.random.RandomState):
            settings["random_state"] = None  # a RandomState's state is not saved
        if row_labels is None:
            row_labels = getattr(self, "row_labels_", None)
        if column_labels is None:
            column_labels = getattr(self, "column_labels_", None)
        fit_info = [float(self.converged_), self.n_iter_, self.log_likelihood_,
                    self.lower_bound_]
        _persist.write_model(path, settings=settings, weights=self.weights_,
                             means=self.means_, variances=self.variances_,
                             fit_info=fit_info, fastem_version=__version__,
                             row_labels=row_labels, column_labels=column_labels,
                             initial=initial)


def _plain(value):
    """A setting as a JSON value (NumPy scalars become Python ones)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if is_int(value):
        return int(value)
    if is_real(value):
        return float(value)
    return value if value is None or isinstance(value, str) else None


def load(path):
    """Load a model written by :meth:`GaussianMixture.save`.

    Parameters
    ----------
    path : str, path-like or binary file object

    Returns
    -------
    GaussianMixture
        Fitted, with its saved settings; ``row_labels_`` and
        ``column_labels_`` hold the saved labels (None when absent).

    Raises
    ------
    fastem.ModelFileError (a ValueError)
        If the file is not a fastem model file, is damaged, has inconsistent
        shapes, or was written in a newer format.
    """
    return model_from_content(_persist.read_model(path))


def model_from_content(content):
    """A fitted GaussianMixture from the validated content of its file."""
    settings = content["settings"]
    valid = GaussianMixture._param_names()
    # The initial arrays are members of their own, checked by read_model.
    unknown = sorted(set(settings) - (set(valid) - set(_persist.INITIAL)))
    if unknown:
        raise ModelFileError(
            f"model file has settings this fastem does not know: {unknown}; "
            "upgrade fastem")
    twice = sorted(set(settings) & set(content["initial"]))
    if twice:
        raise ModelFileError(f"model file holds {twice} both as settings and as arrays")
    if settings.get("covariance_type", content["covariance_type"]) != \
            content["covariance_type"]:
        raise ModelFileError("model file settings disagree on covariance_type")
    model = GaussianMixture(**settings, **content["initial"])
    try:
        Settings(model.get_params())
    except ValueError as exc:
        raise ModelFileError(f"invalid settings in model file: {exc}") from exc
    if model.n_components != content["means"].shape[0]:
        raise ModelFileError(
            f"model file settings say n_components={model.n_components} but the "
            f"means have {content['means'].shape[0]} rows")
    info = content["fit_info"]
    model.weights_ = content["weights"]
    model.means_ = content["means"]
    model.variances_ = content["variances"]
    model.converged_ = info["converged"]
    model.n_iter_ = info["n_iter"]
    model.log_likelihood_ = info["log_likelihood"]
    model.lower_bound_ = info["lower_bound"]
    model.n_features_in_ = content["means"].shape[1]
    model.row_labels_ = content["row_labels"]
    model.column_labels_ = content["column_labels"]
    return model
