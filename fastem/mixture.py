"""The estimator: :class:`GaussianMixture`, in scikit-learn's conventions.

It validates its settings and input, picks the initial parameters, and hands
each restart to the EM driver (:func:`fastem._em.run_em`) in one call; the
driver owns the iterations. Nothing here imports scikit-learn, except
``__sklearn_tags__``, which scikit-learn itself calls.
"""

import inspect
import math
import numbers
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

from . import _persist
from ._backend import MAX_THREADS
from ._data import ObservedData, as_observed
from ._em import Params, estep, run_em, total_loglik
from ._init import INIT_METHODS, initial_params

__all__ = ["GaussianMixture", "load", "ConvergenceWarning", "NotFittedError"]

COVARIANCE_TYPES = ("spherical", "diag")
# Rows of a dense result computed at a time: bounds the temporaries of fill.
_BLOCK_ENTRIES = 1 << 20


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before meeting the ``tol`` criterion."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs fitted parameters was called before ``fit``.

    Raised as a subclass of scikit-learn's ``NotFittedError`` too when
    scikit-learn has been imported, so that either ``except`` clause works.
    """


def _not_fitted_error(method):
    message = (f"this GaussianMixture is not fitted yet; call fit(X) before "
               f"{method}(), or load a fitted model with fastem.load(path)")
    # Someone can only catch scikit-learn's class after importing it, so there
    # is no need to import scikit-learn here.
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return NotFittedError(message)
    both = type("NotFittedError", (NotFittedError, sklearn_exceptions.NotFittedError),
                {"__module__": __name__})
    return both(message)


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------

def _is_dask(X):
    """Whether ``X`` is a Dask collection or ``fastem.dask.Triples``, without importing Dask."""
    if hasattr(X, "__dask_graph__"):
        return True
    # Triples exist only once fastem's Dask module is imported.
    dask_module = sys.modules.get(__name__.rpartition(".")[0] + "._dask")
    return dask_module is not None and isinstance(X, dask_module.Triples)


def _dask_module():
    from . import _dask  # imports Dask: only for Dask input

    return _dask


def _observed(X, missing_values):
    """``X`` as ObservedData, with scikit-learn's messages for bad shapes."""
    if isinstance(X, ObservedData):
        return X
    if sp.issparse(X):
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported; X must hold real numbers")
        _check_shape(X.shape)
        return as_observed(X)
    try:
        X = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"X must be a 2-D array of numbers with rows of equal length "
                         f"({exc})") from None
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported; X must hold real numbers")
    if X.dtype == object:
        try:
            X = X.astype(np.float64)  # None becomes NaN: missing by default
        except (TypeError, ValueError) as exc:
            raise TypeError(f"X must hold numbers; an entry of the object array is not "
                            f"one ({exc}); convert X with X.astype(float)") from None
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array (n_samples, n_features), got {X.ndim}-D of shape "
            f"{X.shape}. Reshape your data either using X.reshape(-1, 1) if it has a "
            "single feature or X.reshape(1, -1) if it is a single sample.")
    _check_shape(X.shape)
    return as_observed(X, missing_values=missing_values)


def _check_shape(shape):
    if len(shape) == 2 and shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={shape}) while a "
                         "minimum of 1 is required.")
    if len(shape) == 2 and shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a "
                         "minimum of 1 is required.")


def _row_of_entry(data):
    return np.repeat(np.arange(data.n_samples, dtype=np.intp), np.diff(data.indptr))


def _row_subset(data, rows):
    """The given (sorted, distinct) rows of ``data``, as new ObservedData."""
    starts = data.indptr[rows].astype(np.int64)
    counts = data.indptr[rows + 1].astype(np.int64) - starts
    indptr = np.zeros(rows.shape[0] + 1, dtype=data.indptr.dtype)
    np.cumsum(counts, out=indptr[1:])
    take = np.repeat(starts - indptr[:-1], counts) + np.arange(indptr[-1])
    return ObservedData(data.data[take], data.indices[take], indptr, data.n_features,
                        copy=False)


def _entry_indices(rows, cols, shape):
    rows, cols = np.asarray(rows), np.asarray(cols)
    if rows.shape != cols.shape:
        raise ValueError(f"rows and cols must have the same shape, got {rows.shape} "
                         f"and {cols.shape}")
    for name, index, size in (("rows", rows, shape[0]), ("cols", cols, shape[1])):
        if index.size and index.dtype.kind not in "iu":
            raise ValueError(f"{name} must hold integers, got dtype {index.dtype}")
        if index.size and (index.min() < 0 or index.max() >= size):
            raise ValueError(f"{name} must lie in [0, {size}); got values in "
                             f"[{index.min()}, {index.max()}]")
    return rows.astype(np.intp).ravel(), cols.astype(np.intp).ravel()


def _observed_values(data, rows, cols):
    """Values of ``data`` at (rows, cols), and a mask of those observed."""
    keys = _row_of_entry(data).astype(np.int64) * data.n_features + data.indices
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    query = rows.astype(np.int64) * data.n_features + cols
    where = np.minimum(np.searchsorted(keys, query), max(keys.shape[0] - 1, 0))
    found = keys[where] == query if keys.shape[0] else np.zeros(query.shape, bool)
    values = data.data[order[where]] if keys.shape[0] else np.zeros(query.shape)
    return values, found


def completed(data, post, means):
    """The completed matrix: observed entries kept, missing ones ``post @ means``.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    post : ndarray of shape (n_samples, n_components)
        Posteriors of the rows of ``data``.
    means : ndarray of shape (n_components, n_features)

    Returns
    -------
    ndarray of shape (n_samples, n_features), of the dtype of the observed values
    """
    filled = np.empty(data.shape, dtype=data.data.dtype)
    step = max(1, _BLOCK_ENTRIES // data.n_features)
    for start in range(0, data.n_samples, step):
        filled[start:start + step] = post[start:start + step] @ means
    filled[_row_of_entry(data), data.indices] = data.data
    return filled


def completed_entries(data, rows, cols, params, *, backend=None, n_threads=None):
    """Entries (rows[p], cols[p]) of the completed matrix of ``data``.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    rows, cols : ndarray of shape (n_entries,), intp
        Checked to lie within the shape of ``data``.
    params : Params
    backend, n_threads
        Passed to the E-step, which runs on the listed rows only.

    Returns
    -------
    ndarray of shape (n_entries,), of the dtype of the observed values
    """
    values = np.empty(rows.shape[0])
    if rows.shape[0]:
        wanted, position = np.unique(rows, return_inverse=True)
        if wanted.shape[0] < data.n_samples:
            data = _row_subset(data, wanted)
            rows = position.ravel()
        post, _ = estep(data, params, backend=backend, n_threads=n_threads)
        means_t = np.ascontiguousarray(params.means.T)
        step = max(1, _BLOCK_ENTRIES // params.means.shape[0])
        for start in range(0, rows.shape[0], step):
            block = slice(start, start + step)
            values[block] = np.einsum("pk,pk->p", post[rows[block]], means_t[cols[block]])
        observed, found = _observed_values(data, rows, cols)
        values[found] = observed[found]
    return values.astype(data.data.dtype, copy=False)


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_setting(ok, name, value, requirement):
    if not ok:
        raise ValueError(f"{name}={value!r} is invalid: {requirement}")


class _Settings:
    """The estimator's parameters, checked once at the start of ``fit``."""

    def __init__(self, est):
        _check_setting(_is_int(est.n_components) and est.n_components >= 1,
                       "n_components", est.n_components, "use an int >= 1")
        _check_setting(est.covariance_type in COVARIANCE_TYPES, "covariance_type",
                       est.covariance_type, f"use one of {COVARIANCE_TYPES}")
        _check_setting(_is_real(est.tol) and 0 <= est.tol < math.inf, "tol", est.tol,
                       "use a relative tolerance >= 0 (0 runs max_iter iterations)")
        _check_setting(_is_int(est.max_iter) and est.max_iter >= 1, "max_iter",
                       est.max_iter, "use an int >= 1")
        _check_setting(_is_int(est.n_init) and est.n_init >= 1, "n_init", est.n_init,
                       "use an int >= 1 (the number of restarts)")
        _check_setting(isinstance(est.init_params, str)
                       and est.init_params in INIT_METHODS, "init_params",
                       est.init_params, f"use one of {INIT_METHODS}")
        _check_setting(_is_real(est.min_variance) and 0 <= est.min_variance < math.inf,
                       "min_variance", est.min_variance,
                       "use a variance floor >= 0 (the course uses 0.25)")
        _check_setting(est.missing_values is None or _is_real(est.missing_values),
                       "missing_values", est.missing_values,
                       "use a number, np.nan, or None (nothing missing)")
        _check_setting(est.random_state is None
                       or isinstance(est.random_state, np.random.RandomState)
                       or (_is_int(est.random_state)
                           and 0 <= est.random_state <= 2**32 - est.n_init),
                       "random_state", est.random_state,
                       "use None, a numpy RandomState, or an int in [0, 2**32 - n_init]")
        _check_setting(isinstance(est.warm_start, (bool, np.bool_)), "warm_start",
                       est.warm_start, "use True or False")
        _check_setting(est.n_threads is None
                       or (_is_int(est.n_threads) and 1 <= est.n_threads <= MAX_THREADS),
                       "n_threads", est.n_threads,
                       f"use None (all cores) or an int in [1, {MAX_THREADS}]")
        _check_setting(est.backend in (None, "cython", "python"), "backend",
                       est.backend, "use None, 'cython' or 'python'")
        _check_setting(_is_int(est.verbose) and est.verbose >= 0, "verbose",
                       est.verbose, "use 0, 1 or 2")
        self.n_components = int(est.n_components)
        self.covariance_type = est.covariance_type
        self.tol = float(est.tol)
        self.max_iter = int(est.max_iter)
        self.n_init = int(est.n_init)
        self.init_params = est.init_params
        self.min_variance = float(est.min_variance)
        self.random_state = est.random_state
        self.warm_start = bool(est.warm_start)
        self.n_threads = None if est.n_threads is None else int(est.n_threads)
        self.backend = est.backend
        self.verbose = int(est.verbose)

    def restart_random_state(self, restart):
        """Random source of restart ``restart`` (0-based)."""
        if self.random_state is None:
            return np.random.mtrand._rand  # NumPy's global RandomState
        if isinstance(self.random_state, np.random.RandomState):
            return self.random_state
        return np.random.RandomState(int(self.random_state) + restart)


def _user_initial(value, shape, name):
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers ({exc})") from None
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    if name == "variances_init" and (array <= 0).any():
        raise ValueError("variances_init must be positive")
    if name == "weights_init" and (array < 0).any():
        raise ValueError("weights_init must be non-negative")
    if name == "weights_init" and abs(array.sum() - 1.0) > 1e-6:
        raise ValueError(f"weights_init must sum to 1, got {array.sum():.6g}; divide "
                         "them by their sum")
    return array


def _check_fit_data(data, largest=None):
    """Refuse data that EM cannot fit: nothing observed, or values too large.

    ``largest``: the largest absolute observed value, when known (row blocks
    on a cluster); otherwise read from ``data``.
    """
    if data.nnz == 0:
        raise ValueError(
            f"X ({data.n_samples} x {data.n_features}) has no observed entry: every "
            "entry is missing, so there is nothing to fit; check missing_values (dense "
            "input) or pass the observed entries (sparse input)")
    if largest is None:
        # Two reductions rather than np.abs: no temporary of nnz values.
        largest = float(max(data.data.max(), -data.data.min()))
    # Squared deviations are summed over up to n * d entries (the course's
    # initialisation reads missing entries as 0): they must stay finite.
    terms = float(max(data.nnz, data.n_samples * data.n_features))
    if largest > 0 and (2.0 * math.log(2.0 * largest) + math.log(terms)
                        >= math.log(sys.float_info.max)):
        raise ValueError(
            f"X holds values up to {largest:.3g} in absolute value: sums of their "
            "squares overflow float64; rescale X (divide it by a power of 10)")


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

class GaussianMixture:
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
    - a :class:`fastem._data.ObservedData` (used as it is, no copy);
    - a ``dask.array.Array`` chunked along rows (NumPy or scipy.sparse
      chunks, read as above) or a ``dask.dataframe.DataFrame`` of (row, col,
      value) triples (see ``fastem.dask.from_triples``): fitted where its
      blocks live, on whatever Dask scheduler is active, each block's pass
      on ``n_threads`` threads (default 1); the predictions are then lazy
      Dask arrays (see the README's section "Dask").

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
        - 'course': the MIT 6.86x rule (SPEC section 3), for reproducing the
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
    README), 'k-means++' finds planted groups that single rows reveal from
    every seed, in a few EM iterations, where random rows do not; on
    Netflix-shaped matrices the two reach the best optimum from a similar
    minority of seeds (random rows ahead by 0.01-0.02 nats per rating on
    average, within the spread of the seeds). Hence 'k-means++' for dense and
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

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep=True):
        """The constructor parameters, as a dict (scikit-learn protocol).

        Parameters
        ----------
        deep : bool, default=True
            Unused: no parameter is itself an estimator.

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters (scikit-learn protocol).

        Parameters
        ----------
        **params
            New values, checked at the next ``fit``.

        Returns
        -------
        self : GaussianMixture

        Raises
        ------
        ValueError
            For a name that is not a constructor parameter.
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for GaussianMixture; "
                                 f"valid parameters are {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = []
        for name in self._param_names():
            value, default = getattr(self, name), defaults[name].default
            if not _same_setting(value, default):
                changed.append(f"{name}={value!r}" if name != "n_components"
                               else repr(value))
        return f"GaussianMixture({', '.join(changed)})"

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

    def fit(self, X, y=None):
        """Fit the mixture by EM, keeping the best of ``n_init`` restarts.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).
            Dense: ``missing_values`` marks missing entries. Sparse: stored
            entries are observed (explicit zeros included), the others missing.
            Dask: row blocks persisted on the workers for the fit.
        y : ignored

        Returns
        -------
        self : GaussianMixture

        Raises
        ------
        ValueError
            For an invalid setting, or X that is malformed (see the README's
            Guarantees), has no observed entry, fewer rows than
            ``n_components``, or values whose squares overflow float64; and
            when a component collapses onto identical points with
            ``min_variance=0``.
        TypeError
            For X that does not hold numbers.
        """
        self._fit(X)
        return self

    def fit_predict(self, X, y=None):
        """Fit, then return the most probable component of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask collection}
            Of shape (n_samples, n_features).
        y : ignored

        Returns
        -------
        labels : ndarray of shape (n_samples,), int64
        """
        data = self._fit(X)
        if not isinstance(data, ObservedData):
            return self.predict(X)
        post, _ = self._estep(data)
        return post.argmax(axis=1)

    def _fit(self, X):
        settings = _Settings(self)
        if _is_dask(X):
            # Row blocks built and persisted on the workers, for the whole fit.
            data = _dask_module().fit_data(X, self.missing_values,
                                           backend=settings.backend,
                                           n_threads=settings.n_threads)
            _check_fit_data(data, data.max_abs)
        else:
            data = _observed(X, self.missing_values)
            _check_fit_data(data)
        n, d = data.shape
        if settings.n_components > n:
            raise ValueError(
                f"n_components={settings.n_components} must be <= n_samples={n}, the "
                "number of rows of X; lower n_components or pass more rows")
        continuing = settings.warm_start and self.__sklearn_is_fitted__()
        if continuing:
            self._check_warm_start(settings, d)
            starts = [None]
        else:
            starts = range(settings.n_init)
        best = None
        for restart in starts:
            result = self._run_restart(data, settings, restart, len(starts), continuing)
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
        return data

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

    def _initial(self, data, settings, restart):
        K, d = settings.n_components, data.n_features
        given = (self.means_init, self.variances_init, self.weights_init)
        if any(value is None for value in given):
            means, variances, weights = initial_params(
                data, K, settings.init_params, settings.restart_random_state(restart),
                covariance_type=settings.covariance_type,
                min_variance=settings.min_variance, backend=settings.backend,
                n_threads=settings.n_threads)
        if self.means_init is not None:
            means = _user_initial(self.means_init, (K, d), "means_init")
        if self.variances_init is not None:
            shape = (K, d) if settings.covariance_type == "diag" else (K,)
            variances = _user_initial(self.variances_init, shape, "variances_init")
        if self.weights_init is not None:
            weights = _user_initial(self.weights_init, (K,), "weights_init")
        return Params(means, variances, weights)

    def _run_restart(self, data, settings, restart, n_restarts, continuing):
        label = "warm start" if continuing else f"restart {restart + 1}/{n_restarts}"
        # The command line's progress display (fastem._progress) sets this on
        # the instance, not as a setting, so that it is never saved or cloned.
        progress = getattr(self, "_progress", None)
        callback = None if progress is None else progress(restart, n_restarts)
        start = time.perf_counter()
        if continuing:
            params = Params(self.means_, self.variances_, self.weights_)
        else:
            params = self._initial(data, settings, restart)
        init_seconds = time.perf_counter() - start
        if settings.verbose >= 2:
            how = "fitted parameters" if continuing else f"init {settings.init_params!r}"
            _log(f"{label}: {how} ({init_seconds:.3f} s)")
        if settings.verbose >= 1:
            callback = _IterationLog(f"[{label}] " if n_restarts > 1 else "")
        if isinstance(data, ObservedData):
            result = run_em(data, params, tol=settings.tol, max_iter=settings.max_iter,
                            min_variance=settings.min_variance, backend=settings.backend,
                            n_threads=settings.n_threads, callback=callback)
        else:  # row blocks on a cluster, with their own backend and threads
            result = data.run_em(params, tol=settings.tol, max_iter=settings.max_iter,
                                 min_variance=settings.min_variance, callback=callback)
        if settings.verbose >= 2:
            status = "converged" if result.converged else "not converged"
            _log(f"{label}: log-likelihood {result.log_likelihood:.12g}, "
                 f"{result.n_iter} iterations, {status}, "
                 f"{time.perf_counter() - start:.3f} s")
        return result

    # -- prediction -----------------------------------------------------------

    def _check_fitted(self, method):
        if not self.__sklearn_is_fitted__():
            raise _not_fitted_error(method)

    def _data(self, X, method):
        self._check_fitted(method)
        data = _observed(X, self.missing_values)
        if data.n_features != self.n_features_in_:
            raise ValueError(
                f"X has {data.n_features} features, but GaussianMixture is expecting "
                f"{self.n_features_in_} features as input")
        return data

    def _params(self):
        return Params(self.means_, self.variances_, self.weights_)

    def _dask_predict(self, X, method):
        self._check_fitted(method)
        return _dask_module().predict_blocks(self, X, method)

    def _estep(self, data):
        return estep(data, self._params(), backend=self.backend, n_threads=self.n_threads)

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
        if _is_dask(X):
            return self._dask_predict(X, "predict_proba")
        post, _ = self._estep(self._data(X, "predict_proba"))
        return post

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
        if _is_dask(X):
            return self._dask_predict(X, "predict")
        post, _ = self._estep(self._data(X, "predict"))
        return post.argmax(axis=1)

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
        if _is_dask(X):
            return self._dask_predict(X, "score_samples")
        _, row_loglik = self._estep(self._data(X, "score_samples"))
        return row_loglik

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
        if _is_dask(X):
            log_likelihood, n = self._total_loglik(X, "score")
            return log_likelihood / n
        row_loglik = self.score_samples(X)
        return total_loglik(row_loglik) / row_loglik.shape[0]

    def _n_parameters(self):
        K, d = self.means_.shape
        variances = self.variances_.size  # K (spherical) or K * d (diag)
        return K * d + variances + K - 1

    def _total_loglik(self, X, method):
        if _is_dask(X):
            self._check_fitted(method)
            return _dask_module().total_loglik(self, X)
        data = self._data(X, method)
        _, row_loglik = self._estep(data)
        return total_loglik(row_loglik), data.n_samples

    def bic(self, X):
        """Bayesian information criterion on ``X`` (lower is better).

        ``-2 LL + p ln(n)``, scikit-learn's convention, with LL the total
        log-likelihood of ``X``, n its number of rows and p the number of
        free parameters: K*d + K + (K - 1) for 'spherical', 2*K*d + (K - 1)
        for 'diag'. (The course's ``bic`` is ``LL - p/2 ln(n)``, higher is
        better: it equals ``-bic(X) / 2``.)

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
        if _is_dask(X):
            return self._dask_predict(X, "fill")
        data = self._data(X, "fill")
        post, _ = self._estep(data)
        return completed(data, post, self.means_)

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
        if _is_dask(X):
            self._check_fitted("predict_entries")
            return _dask_module().predict_entries(self, X, rows, cols)
        data = self._data(X, "predict_entries")
        shape = np.shape(rows)
        rows, cols = _entry_indices(rows, cols, data.shape)
        values = completed_entries(data, rows, cols, self._params(), backend=self.backend,
                                   n_threads=self.n_threads)
        return values.reshape(shape)

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
        self._check_fitted("save")
        from . import __version__

        params = self.get_params()
        initial = {name: params.pop(name) for name in _persist.INITIAL}
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
    if _is_int(value):
        return int(value)
    if _is_real(value):
        return float(value)
    return value if value is None or isinstance(value, str) else None


def _same_setting(value, default):
    if value is default:
        return True
    if isinstance(value, float) and isinstance(default, float):
        return value == default or (math.isnan(value) and math.isnan(default))
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return False
    try:
        return bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):
        return False


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
    fastem._persist.ModelFileError (a ValueError)
        If the file is not a fastem model file, is damaged, has inconsistent
        shapes, or was written in a newer format.
    """
    content = _persist.read_model(path)
    settings = content["settings"]
    valid = GaussianMixture._param_names()
    # The initial arrays are members of their own, checked by read_model.
    unknown = sorted(set(settings) - (set(valid) - set(_persist.INITIAL)))
    if unknown:
        raise _persist.ModelFileError(
            f"model file has settings this fastem does not know: {unknown}; "
            "upgrade fastem")
    if settings.get("covariance_type", content["covariance_type"]) != \
            content["covariance_type"]:
        raise _persist.ModelFileError("model file settings disagree on covariance_type")
    model = GaussianMixture(**settings, **content["initial"])
    try:
        _Settings(model)
    except ValueError as exc:
        raise _persist.ModelFileError(f"invalid settings in model file: {exc}") from exc
    if model.n_components != content["means"].shape[0]:
        raise _persist.ModelFileError(
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
