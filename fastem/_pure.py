"""Pure NumPy/SciPy kernels: the twin of the compiled ``_kernels`` module.

Both modules export the same functions with the same arguments;
``fastem._pass`` validates the arguments and ``fastem._backend`` chooses the
module. Arrays marked OUT are overwritten.
Work is done with sparse products over the observed entries only: time and
memory are O(nnz * K + n_samples * K + K * n_features).
"""

import numpy as np
import scipy.sparse as sp

from ._observed import row_blocks

__all__ = [
    "fused_pass", "column_fused_pass", "estep_pass", "sq_distances", "exact_sum_pieces",
    "accumulate_stats", "workspace_size", "column_workspace_size",
    "openmp_enabled", "max_threads",
]

# Observed entries per block of rows in sq_distances: bounds its temporaries.
_BLOCK_ENTRIES = 1 << 21

openmp_enabled = False


def max_threads():
    return 1


def workspace_size(n_components, n_features, n_threads, diag=False):
    """This backend needs no workspace."""
    return 0


def column_workspace_size(n_components, n_features, n_samples, n_threads, diag=False):
    """This backend needs no workspace."""
    return 0


class _Centred:
    """The observed entries, centred per column on the components' average.

    Centring keeps the expansion |x - m|^2 = x^2 - 2 x m + m^2 from cancelling
    catastrophically when the data have a large offset.
    """

    def __init__(self, data, indices, indptr, means):
        self.n_features = means.shape[1]
        self.shift = means.mean(axis=0)
        values = data - self.shift[indices]
        self.means = means - self.shift
        self.X = self._csr(values, indices, indptr)
        self.X2 = self._csr(values * values, indices, indptr)
        self.mask = self._csr(np.ones_like(values), indices, indptr)

    def _csr(self, values, indices, indptr):
        shape = (indptr.shape[0] - 1, self.n_features)
        return sp.csr_matrix((values, indices, indptr), shape=shape, copy=False)

    def distances(self, variances):
        """Spherical: |x_u - m_j|^2; diag: sum of (x - m)^2 / (2 var) + 0.5 log(2 pi var)."""
        if variances.ndim == 1:
            scale = np.ones_like(self.means)
            offset = 0.0
        else:
            scale = 0.5 / variances
            offset = self.mask @ (0.5 * np.log(2.0 * np.pi * variances)).T
        dist = self.mask @ (self.means**2 * scale).T
        dist -= 2.0 * (self.X @ (self.means * scale).T)
        dist += self.X2 @ scale.T
        np.maximum(dist, 0.0, out=dist)  # rounding; true squared terms are >= 0
        return dist + offset

    def squared_deviations(self, post):
        """Q[j, i] = sum_u post[u, j] (x_ui - m_ji)^2 over the observed entries."""
        q = (self.X2.T @ post).T
        q -= 2.0 * self.means * (self.X.T @ post).T
        q += self.means**2 * (self.mask.T @ post).T
        return np.maximum(q, 0.0)


def sq_distances(data, indices, indptr, centres, out, n_threads):
    """Squared distances of every row to each centre over its observed entries.

    Parameters
    ----------
    data, indices, indptr : ndarray
        Validated CSR arrays of the observed entries (n_samples rows).
    centres : ndarray of shape (n_centres, n_features), float64
    out : ndarray of shape (n_samples, n_centres), float64, OUT
        out[u, j] = sum over the observed columns i of row u of
        (x_ui - centres[j, i])^2.
    n_threads : int
        Ignored by this backend.
    """
    unit = np.ones(centres.shape[0])
    # Blocks of rows of about _BLOCK_ENTRIES entries: temporaries stay small.
    for first, last in row_blocks(indptr, _BLOCK_ENTRIES):
        start, stop = indptr[first], indptr[last]
        block = _Centred(data[start:stop], indices[start:stop],
                         indptr[first:last + 1] - start, centres)
        out[first:last] = block.distances(unit)


def exact_sum_pieces(values, pieces):
    """Add finite values into the exact pieces of their sum (see ``fastem._pass.exact_sum``).

    Parameters
    ----------
    values : ndarray of shape (n,), float64, finite, n <= 2**30
    pieces : ndarray of shape (3, 2098), float64, IN/OUT
        pieces[k, b] += bits 18k..18k+17 of the 53-bit integer mantissa M
        (the top piece signed) of each value with frexp exponent b - 1073.
    """
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    mantissas, exponents = np.frexp(values)
    mantissas = (mantissas * 2.0**53).astype(np.int64)
    bins = exponents + 1073
    for k in range(3):
        piece = mantissas >> (18 * k)
        if k < 2:
            piece &= (1 << 18) - 1
        pieces[k] += np.bincount(bins, weights=piece.astype(np.float64),
                                 minlength=pieces.shape[1])


def _log_posteriors(dist, row_counts, variances, log_weights, post, row_loglik):
    """Fill post and row_loglik from the distances (log domain)."""
    log_joint = post
    if variances.ndim == 1:
        np.multiply(dist, -0.5 / variances, out=log_joint)
        log_joint -= np.outer(row_counts, 0.5 * np.log(2.0 * np.pi * variances))
    else:
        np.negative(dist, out=log_joint)
    log_joint += log_weights
    row_max = log_joint.max(axis=1)
    np.subtract(log_joint, row_max[:, None], out=log_joint)
    np.exp(log_joint, out=log_joint)
    np.log(log_joint.sum(axis=1), out=row_loglik)
    row_loglik += row_max
    log_joint /= log_joint.sum(axis=1)[:, None]
    # As the compiled kernels: no subnormal posteriors (their arithmetic is slow).
    log_joint[log_joint < np.finfo(np.float64).tiny] = 0.0


def _harden(dist, post):
    """Replace post by a one-hot assignment to the nearest mean."""
    nearest = dist.argmin(axis=1)
    post.fill(0.0)
    post[np.arange(post.shape[0]), nearest] = 1.0


def estep_pass(data, indices, indptr, means, variances, log_weights, post,
               row_loglik, n_threads):
    """E-step over the observed entries.

    Parameters
    ----------
    data, indices, indptr : ndarray
        Validated CSR arrays of the observed entries (n_samples rows).
    means : ndarray of shape (n_components, n_features), float64
    variances : ndarray of shape (n_components,) or (n_components, n_features)
        float64, positive: spherical or diag model.
    log_weights : ndarray of shape (n_components,), float64
        Log mixing weights as used in the component scores.
    post : ndarray of shape (n_samples, n_components), float64, OUT
        Posterior probabilities.
    row_loglik : ndarray of shape (n_samples,), float64, OUT
        log p(x_u) over the observed entries of each row.
    n_threads : int
        Ignored by this backend.
    """
    variances = np.asarray(variances, dtype=np.float64)
    dist = _Centred(data, indices, indptr, means).distances(variances)
    row_counts = np.diff(indptr).astype(np.float64)
    _log_posteriors(dist, row_counts, variances, log_weights, post, row_loglik)


def fused_pass(data, indices, indptr, means, variances, log_weights, hard, post,
               row_loglik, resp_sum, resp_x_sum, resp_obs_sum, resp_sq_sum,
               n_threads, workspace=None, group_rows=None):
    """One EM iteration's pass: the E-step and the M-step's sufficient statistics.

    Parameters
    ----------
    data, indices, indptr, means, variances, log_weights, post, row_loglik, n_threads
        As in :func:`estep_pass`.
    hard : bool
        If True, ``post`` becomes a one-hot assignment of each row to its
        nearest mean (k-means; spherical only); ``row_loglik`` is still the
        mixture's.
    resp_sum : ndarray of shape (n_components,), float64, OUT
        n_j = sum_u post[u, j].
    resp_x_sum : ndarray of shape (n_components, n_features), float64, OUT
        S1[j, i] = sum_u post[u, j] x_ui over the observed entries.
    resp_obs_sum : ndarray of shape (n_components, n_features), float64, OUT
        N[j, i] = sum_u post[u, j] over the rows observing column i.
    resp_sq_sum : ndarray of float64, OUT
        Spherical, shape (n_components,): R_j = sum_u post[u, j]
        |x_u - means[j]|^2 over the observed entries. Diag, shape
        (n_components, n_features): Q[j, i] = sum_u post[u, j] (x_ui - means[j, i])^2.
    workspace : ndarray or None
        Scratch memory of ``workspace_size(...)`` doubles; unused here.
    group_rows : int or None
        The order in which the compiled pass reads the entries; this
        backend's products read them all at once (it is not used).
    """
    variances = np.asarray(variances, dtype=np.float64)
    if hard and variances.ndim == 2:
        raise ValueError("hard assignment is defined for the spherical model only")
    centred = _Centred(data, indices, indptr, means)
    dist = centred.distances(variances)
    row_counts = np.diff(indptr).astype(np.float64)
    _log_posteriors(dist, row_counts, variances, log_weights, post, row_loglik)
    if hard:
        _harden(dist, post)
    _accumulate(data, indices, indptr, centred, post, dist, variances.ndim == 2,
                resp_sum, resp_x_sum, resp_obs_sum, resp_sq_sum)


def column_fused_pass(data, rows, colptr, row_counts, means, variances, log_weights, post,
                      row_loglik, resp_sum, resp_x_sum, resp_obs_sum, resp_sq_sum,
                      n_threads, workspace=None):
    """:func:`fused_pass` over the rows of Y, given the CSR arrays of Y's transpose.

    This backend's products need Y by rows: it is transposed once per call.
    ``row_counts`` and ``workspace`` are not needed here.
    """
    shape = (colptr.shape[0] - 1, post.shape[0])
    by_row = sp.csr_matrix((data, rows, colptr), shape=shape, copy=False).T.tocsr()
    fused_pass(by_row.data, by_row.indices, by_row.indptr, means, variances, log_weights,
               False, post, row_loglik, resp_sum, resp_x_sum, resp_obs_sum, resp_sq_sum,
               n_threads)


def accumulate_stats(data, indices, indptr, means, post, resp_sum, resp_x_sum,
                     resp_obs_sum, resp_sq_sum, n_threads):
    """The spherical statistics of :func:`fused_pass` for a given ``post``.

    This serves an M-step from arbitrary posteriors (the course's ``mstep``);
    ``resp_sq_sum`` (R_j) is taken with respect to ``means``. ``n_threads``
    is ignored by this backend.
    """
    centred = _Centred(data, indices, indptr, means)
    dist = centred.distances(np.ones(means.shape[0]))
    _accumulate(data, indices, indptr, centred, post, dist, False, resp_sum,
                resp_x_sum, resp_obs_sum, resp_sq_sum)


def _accumulate(data, indices, indptr, centred, post, dist, diag, resp_sum,
                resp_x_sum, resp_obs_sum, resp_sq_sum):
    X = centred._csr(data, indices, indptr)
    post.sum(axis=0, out=resp_sum)
    resp_x_sum[...] = (X.T @ post).T
    resp_obs_sum[...] = (centred.mask.T @ post).T
    if diag:
        resp_sq_sum[...] = centred.squared_deviations(post)
    else:
        np.einsum("uj,uj->j", post, dist, out=resp_sq_sum)
