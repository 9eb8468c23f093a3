"""One pass over the observed entries: validated kernel calls and their buffers.

Every call of a kernel goes through this module, which checks the data (an
:class:`~fastem._observed.ObservedData`), the parameters and the output
buffers, then runs the backend that ``fastem._backend`` chooses. A pass
computes, for one block of rows, the E-step and the sums the M-step needs
(the statistics of docs/model.md, section 4); :class:`PassBuffers` owns the
arrays a sequence of passes fills and reuses.
"""

import numpy as np

from ._backend import effective_n_threads, get_backend
from ._observed import ObservedData
from ._validation import Params, check_params

__all__ = [
    "COURSE_WEIGHT_FLOOR", "SufficientStats", "PassBuffers", "estep", "fused_pass",
    "column_fused_pass",
    "check_memory", "check_fit_memory", "available_memory",
    "sq_distances", "accumulate_stats", "check_row_loglik",
    "log_weights", "exact_sum", "exact_to_float", "total_loglik",
]

# The course scores a component with log(p_j + 1e-16), so that a component of
# weight 0 stays finite.
COURSE_WEIGHT_FLOOR = 1e-16


class SufficientStats:
    """Per-pass sums over the observed entries (docs/model.md, sections 4 and 5), float64.

    ``resp_sq_sum`` is R_j, shape (K,), for the spherical model and Q[j, i],
    shape (K, d), for the diag model (``diag=True``).
    """

    __slots__ = ("resp_sum", "resp_x_sum", "resp_obs_sum", "resp_sq_sum")

    def __init__(self, n_components, n_features, diag=False):
        self.resp_sum = np.zeros(n_components)
        self.resp_x_sum = np.zeros((n_components, n_features))
        self.resp_obs_sum = np.zeros((n_components, n_features))
        self.resp_sq_sum = np.zeros((n_components, n_features) if diag else n_components)

    def arrays(self):
        return (self.resp_sum, self.resp_x_sum, self.resp_obs_sum, self.resp_sq_sum)

    def copy(self):
        return SufficientStats.from_arrays(*(array.copy() for array in self.arrays()))

    @classmethod
    def from_arrays(cls, resp_sum, resp_x_sum, resp_obs_sum, resp_sq_sum):
        """Statistics holding the given arrays (e.g. sums over row blocks)."""
        stats = cls.__new__(cls)
        stats.resp_sum, stats.resp_x_sum = resp_sum, resp_x_sum
        stats.resp_obs_sum, stats.resp_sq_sum = resp_obs_sum, resp_sq_sum
        return stats


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------

def check_row_loglik(row_loglik, first_row=0):
    """Raise ValueError unless every row's log-likelihood is finite.

    A row's log-likelihood is -inf (and its posteriors NaN) only when its
    squared distance to every mean, over the variance, overflows float64.
    ``first_row`` numbers the rows of a block as rows of the whole matrix.
    """
    bad = ~np.isfinite(row_loglik)
    if bad.any():
        row = first_row + int(np.argmax(bad))
        raise ValueError(
            f"the log-likelihood of row {row} is not finite: its squared distances "
            "to the component means, divided by the variances, overflow float64; "
            "rescale X (divide it by a power of 10) or raise min_variance")


def _check_buffer(array, shape, name):
    if (not isinstance(array, np.ndarray) or array.dtype != np.float64
            or array.shape != shape or not array.flags.c_contiguous
            or not array.flags.writeable):
        raise ValueError(f"{name} must be a writeable C-contiguous float64 array of shape {shape}")


def _check_data(X):
    if not isinstance(X, ObservedData):
        raise TypeError("kernels take ObservedData; convert with fastem.as_observed")


# Room for each OpenMP thread's stack and the allocator's own needs: a
# request is refused when it would leave less than this per thread.
_THREAD_MARGIN = 16 << 20


def _meminfo_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left():
    """Bytes the process may still map under RLIMIT_AS (None: no limit known)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return limit - int(line.split()[1]) * 1024
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return None


def available_memory():
    """Bytes that can still be allocated: the system's available memory, or what
    RLIMIT_AS leaves the process, whichever is less; None where unknown."""
    known = [value for value in (_meminfo_available(), _address_space_left())
             if value is not None]
    return min(known) if known else None


def check_memory(nbytes, what, n_threads=1):
    """Raise MemoryError before allocating ``nbytes`` that cannot fit.

    ``what`` names the request in the message, which says what to change.
    """
    available = available_memory()
    if available is None or nbytes + n_threads * _THREAD_MARGIN <= available:
        return
    raise MemoryError(
        f"{what} need {nbytes / 2**20:,.0f} MB, but only {max(available, 0) / 2**20:,.0f} "
        "MB of memory is available: use fewer components (n_components), fewer "
        "threads (n_threads), float32 data, or fewer rows at a time")


def check_fit_memory(n_samples, n_features, n_components, *, diag=False, backend=None,
                     n_threads=None):
    """Raise MemoryError unless a fit of these sizes can fit in memory.

    Counts the arrays of K x d the parameters, statistics and M-step hold at
    once (about six), the kernels' per-thread workspace and the n x K
    posteriors, before any is made.
    """
    kernels = get_backend(backend)
    n_threads = effective_n_threads(n_threads, kernels)
    parameters = 8 * 6 * n_components * n_features * (2 if diag else 1)
    workspace = 8 * kernels.workspace_size(n_components, n_features, n_threads, diag)
    posteriors = 8 * n_samples * (n_components + 1)
    check_memory(parameters + workspace + posteriors,
                 f"a fit of {n_components} components to {n_samples:,} rows x "
                 f"{n_features:,} columns on {n_threads} thread(s) would", n_threads)


def log_weights(weights, weight_floor):
    with np.errstate(divide="ignore"):
        return np.log(weights + weight_floor)


# ---------------------------------------------------------------------------
# kernel calls
# ---------------------------------------------------------------------------

def estep(X, params, *, weight_floor=COURSE_WEIGHT_FLOOR, backend=None,
          n_threads=None, post=None, row_loglik=None, first_row=0):
    """Posteriors and per-row log-likelihoods of ``X`` under ``params``.

    ``post`` and ``row_loglik`` (None: new arrays) receive the results.
    ``first_row`` numbers the rows of ``X`` in error messages (for a block
    of a larger matrix).

    Returns
    -------
    post : ndarray of shape (n_samples, n_components)
    row_loglik : ndarray of shape (n_samples,)
    """
    _check_data(X)
    params = check_params(params, X.n_features)
    n_components = params.means.shape[0]
    if post is None:
        check_memory(8 * X.n_samples * (n_components + 1),
                     f"the posteriors of {X.n_samples:,} rows x {n_components} components")
    post = np.empty((X.n_samples, n_components)) if post is None else post
    row_loglik = np.empty(X.n_samples) if row_loglik is None else row_loglik
    _check_buffer(post, (X.n_samples, n_components), "post")
    _check_buffer(row_loglik, (X.n_samples,), "row_loglik")
    kernels = get_backend(backend)
    kernels.estep_pass(
        X.data, X.indices, X.indptr, params.means, params.variances,
        log_weights(params.weights, weight_floor), post, row_loglik,
        effective_n_threads(n_threads, kernels),
    )
    check_row_loglik(row_loglik, first_row)  # never NaN posteriors
    return post, row_loglik


def sq_distances(X, centres, *, backend=None, n_threads=None, out=None):
    """Squared distances of the rows of ``X`` to each centre, over their observed entries.

    Returns
    -------
    out : ndarray of shape (n_samples, n_centres)
        out[u, j] = sum over the observed columns i of row u of
        (x_ui - centres[j, i])^2; 0 for a row with no observed entry.
    """
    _check_data(X)
    centres = np.ascontiguousarray(np.atleast_2d(centres), dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != X.n_features or centres.shape[0] < 1:
        raise ValueError(f"centres must have shape (n_centres >= 1, {X.n_features}), "
                         f"got {centres.shape}")
    if not np.isfinite(centres).all():
        raise ValueError("centres must be finite")
    out = np.empty((X.n_samples, centres.shape[0])) if out is None else out
    _check_buffer(out, (X.n_samples, centres.shape[0]), "out")
    kernels = get_backend(backend)
    kernels.sq_distances(X.data, X.indices, X.indptr, centres, out,
                         effective_n_threads(n_threads, kernels))
    return out


def _check_stats(stats, n_components, n_features, variances_shape):
    _check_buffer(stats.resp_sum, (n_components,), "resp_sum")
    _check_buffer(stats.resp_x_sum, (n_components, n_features), "resp_x_sum")
    _check_buffer(stats.resp_obs_sum, (n_components, n_features), "resp_obs_sum")
    _check_buffer(stats.resp_sq_sum, variances_shape, "resp_sq_sum")


def fused_pass(X, params, post, row_loglik, stats, *, weight_floor=COURSE_WEIGHT_FLOOR,
               hard=False, backend=None, n_threads=None, workspace=None):
    """One pass: E-step into ``post``/``row_loglik``, M-step sums into ``stats``.

    ``workspace`` (a :class:`PassBuffers`' own) is scratch memory kept across
    iterations; None allocates it for this call.
    """
    _check_data(X)
    params = check_params(params, X.n_features)
    n_components = params.means.shape[0]
    _check_buffer(post, (X.n_samples, n_components), "post")
    _check_buffer(row_loglik, (X.n_samples,), "row_loglik")
    _check_stats(stats, n_components, X.n_features, params.variances.shape)
    kernels = get_backend(backend)
    kernels.fused_pass(
        X.data, X.indices, X.indptr, params.means, params.variances,
        log_weights(params.weights, weight_floor), bool(hard), post, row_loglik,
        *stats.arrays(), effective_n_threads(n_threads, kernels), workspace,
    )


def column_fused_pass(columns, row_counts, params, post, row_loglik, stats, *,
                      weight_floor=COURSE_WEIGHT_FLOOR, backend=None, n_threads=None,
                      workspace=None):
    """:func:`fused_pass` over the rows of a matrix given column by column.

    The same results, to rounding, as :func:`fused_pass` on the matrix; faster
    where its rows are few and its columns many (the kernels'
    ``column_fused_pass`` says why).

    Parameters
    ----------
    columns : ObservedData of shape (n_features, n_samples)
        The matrix's transpose: one row per column of the matrix.
    row_counts : ndarray of shape (n_samples,), float64
        Observed entries per row of the matrix.
    params, post, row_loglik, stats, weight_floor, backend, n_threads
        As in :func:`fused_pass`.
    workspace : ndarray, optional
        That of ``PassBuffers(..., n_rows=n_samples)``.
    """
    _check_data(columns)
    n_samples, n_features = columns.n_features, columns.n_samples
    params = check_params(params, n_features)
    n_components = params.means.shape[0]
    _check_buffer(row_counts, (n_samples,), "row_counts")
    _check_buffer(post, (n_samples, n_components), "post")
    _check_buffer(row_loglik, (n_samples,), "row_loglik")
    _check_stats(stats, n_components, n_features, params.variances.shape)
    kernels = get_backend(backend)
    kernels.column_fused_pass(
        columns.data, columns.indices, columns.indptr, row_counts, params.means,
        params.variances, log_weights(params.weights, weight_floor), post, row_loglik,
        *stats.arrays(), effective_n_threads(n_threads, kernels), workspace,
    )


def accumulate_stats(X, post, means, *, backend=None):
    """The spherical statistics of a pass for given posteriors ``post``.

    For an M-step from arbitrary soft counts (the course's ``mstep``); R_j
    is taken with respect to ``means``.

    Parameters
    ----------
    X : ObservedData of shape (n_samples, n_features)
    post : ndarray of shape (n_samples, n_components), float64
        Finite, non-negative soft counts.
    means : ndarray of shape (n_components, n_features), float64

    Returns
    -------
    SufficientStats
    """
    _check_data(X)
    means = np.ascontiguousarray(means, dtype=np.float64)
    if means.ndim != 2 or means.shape[1] != X.n_features or means.shape[0] < 1:
        raise ValueError(f"means must have shape (n_components, {X.n_features}), got "
                         f"{means.shape}")
    post = np.ascontiguousarray(post, dtype=np.float64)
    if post.shape != (X.n_samples, means.shape[0]):
        raise ValueError(f"post must have shape {(X.n_samples, means.shape[0])}, got "
                         f"{post.shape}")
    stats = SufficientStats(*means.shape)
    kernels = get_backend(backend)
    kernels.accumulate_stats(X.data, X.indices, X.indptr, means, post, *stats.arrays(),
                             effective_n_threads(None, kernels))
    return stats


def _workspace_size(kernels, n_components, n_features, diag, n_threads, n_rows):
    """Doubles of scratch memory of a pass; of a pass by columns with ``n_rows``."""
    if n_rows is None:
        return kernels.workspace_size(n_components, n_features, n_threads, diag)
    return kernels.column_workspace_size(n_components, n_features, n_rows, n_threads, diag)


class PassBuffers:
    """The arrays of a sequence of fused passes, made once and reused.

    Owns the posteriors, the row log-likelihoods, the statistics and the
    kernels' workspace of passes with ``n_components`` components over data
    of ``n_features`` columns. The posteriors grow to the largest block of
    rows passed so far, so one instance serves the row blocks of a matrix in
    turn. The EM driver, the initialisations' k-means, the course's k-means,
    the timing of ``fastem bench`` and the Dask blocks all pass through one.

    Parameters
    ----------
    n_components, n_features : int
    diag : bool, default=False
        Statistics of the diag model.
    backend : {None, 'cython', 'python'}
    n_threads : int or None
        Threads of every pass; None: the backend's default.
    n_rows : int or None
        For :meth:`column_pass` over a matrix of that many rows: its
        workspace.

    Attributes
    ----------
    post : ndarray of shape (n_samples, n_components)
        Posteriors of the last pass's rows (a view of the buffer).
    row_loglik : ndarray of shape (n_samples,)
        Log-likelihoods of the last pass's rows.
    stats : SufficientStats
        Statistics of the last pass.
    """

    def __init__(self, n_components, n_features, *, diag=False, backend=None,
                 n_threads=None, n_rows=None):
        self.key = (n_components, n_features, diag, backend, n_threads, n_rows)
        self.backend = backend
        kernels = get_backend(backend)
        self.n_threads = effective_n_threads(n_threads, kernels)
        stats_bytes = 8 * n_components * n_features * (3 if diag else 2)
        size = _workspace_size(kernels, n_components, n_features, diag, self.n_threads,
                               n_rows)
        check_memory(8 * size + stats_bytes,
                     f"the pass buffers of {n_components} components x {n_features:,} "
                     f"columns on {self.n_threads} thread(s)", self.n_threads)
        self.stats = SufficientStats(n_components, n_features, diag)
        self.workspace = np.empty(size) if size else None
        self._post = np.empty((0, n_components))
        self._row_loglik = np.empty(0)
        self.post, self.row_loglik = self._post, self._row_loglik

    def _rows(self, n_samples):
        if n_samples > self._row_loglik.shape[0]:
            n_components = self._post.shape[1]
            check_memory(8 * n_samples * (n_components + 1),
                         f"the posteriors of {n_samples:,} rows x {n_components} "
                         "components", self.n_threads)
            self._post = np.empty((n_samples, self._post.shape[1]))
            self._row_loglik = np.empty(n_samples)
        # Leading rows of a C-contiguous array: C-contiguous views.
        self.post, self.row_loglik = self._post[:n_samples], self._row_loglik[:n_samples]

    def fused_pass(self, X, params, *, weight_floor=COURSE_WEIGHT_FLOOR, hard=False,
                   first_row=0):
        """One fused pass over ``X``; the results are in ``post``, ``row_loglik``
        and ``stats``.

        ``first_row`` numbers the rows of ``X`` in error messages. Hard passes
        (k-means) do not check the log-likelihoods, which they do not use.
        """
        self._rows(X.n_samples)
        fused_pass(X, params, self.post, self.row_loglik, self.stats,
                   weight_floor=weight_floor, hard=hard, backend=self.backend,
                   n_threads=self.n_threads, workspace=self.workspace)
        if not hard:
            check_row_loglik(self.row_loglik, first_row)
        return self

    def column_pass(self, columns, row_counts, params, *,
                    weight_floor=COURSE_WEIGHT_FLOOR, first_row=0):
        """:meth:`fused_pass` over the matrix whose transpose is ``columns``.

        ``row_counts``: the matrix's observed entries per row (see
        :func:`column_fused_pass`). The buffers must have been made with
        ``n_rows`` = the matrix's rows.
        """
        self._rows(columns.n_features)
        column_fused_pass(columns, row_counts, params, self.post, self.row_loglik,
                          self.stats, weight_floor=weight_floor, backend=self.backend,
                          n_threads=self.n_threads, workspace=self.workspace)
        check_row_loglik(self.row_loglik, first_row)
        return self

    def hard_pass(self, X, means):
        """A k-means pass: each row of ``X`` assigned to its nearest mean.

        ``post`` becomes one-hot and ``stats`` the counts and sums per
        cluster and column. Returns the labels, (n_samples,) intp.
        """
        # Hard assignment ignores variances and weights; unit ones keep the
        # pass valid.
        n_components = means.shape[0]
        params = Params(means, np.ones(n_components), np.full(n_components,
                                                              1.0 / n_components))
        self.fused_pass(X, params, hard=True)
        return self.post.argmax(axis=1)


# ---------------------------------------------------------------------------
# exactly rounded sums of log-likelihoods
# ---------------------------------------------------------------------------

# Every finite float64 times 2**1127 is an integer: x = M * 2**(e - 53) with
# |M| < 2**53 and e >= -1073 (frexp).
_EXACT_SCALE = 1127
_EXACT_BINS = 2098
_EXACT_CHUNK = 1 << 30  # pieces < 2**18: sums of 2**30 of them stay below 2**53


def exact_sum(values, *, backend=None):
    """The exact sum of finite float64 values, as the int ``sum * 2**1127``.

    Sums of blocks added as ints and rounded once by :func:`exact_to_float`
    give what ``math.fsum`` gives over all the values (an exactly rounded
    sum), however the values were split into blocks.
    """
    values = np.ascontiguousarray(values, dtype=np.float64).ravel()
    kernels = get_backend(backend)
    total = 0
    for start in range(0, values.shape[0], _EXACT_CHUNK):
        # Integer pieces of the mantissas summed per exponent in float64
        # (exactly: they stay below 2**53), then shifted into place as ints.
        pieces = np.zeros((3, _EXACT_BINS))
        kernels.exact_sum_pieces(values[start:start + _EXACT_CHUNK], pieces)
        for k in range(3):
            for b in np.flatnonzero(pieces[k]):
                total += int(pieces[k, b]) << int(b + 1 + 18 * k)
    return total


def exact_to_float(total):
    """``total * 2**-1127`` rounded to the nearest float64 (see :func:`exact_sum`)."""
    try:
        return total / (1 << _EXACT_SCALE)  # int / int is correctly rounded
    except OverflowError:
        raise ValueError("the total log-likelihood overflows float64; rescale X "
                         "(divide it by a power of 10)") from None


def total_loglik(row_loglik, *, backend=None):
    """Exactly rounded sum: independent of how rows were split among threads or blocks."""
    check_row_loglik(row_loglik)
    return exact_to_float(exact_sum(row_loglik, backend=backend))
