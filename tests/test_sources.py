"""The contract of a data source (``fastem._source.DataSource``), for every implementation.

One suite, run against the in-memory source and against Dask sources (blocks
persisted for a fit, and lazy blocks for predictions, on Dask's local
threads): every method is compared with a direct dense NumPy computation on
the same matrix. Without Dask the Dask cases skip, except under CI=true.
"""

import math
import os

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fastem import as_observed
from fastem._input import as_source
from fastem._predictions import COMPLETED, LABELS, POSTERIORS, ROW_LOGLIK
from fastem._source import Clustering, DataSource, Seeding
from fastem._validation import Params

RTOL = 1e-10
KINDS = ["memory", "dask-persisted", "dask-lazy"]


def _matrix():
    """60 x 7 ratings with NaN for missing entries, two rows empty, one column empty."""
    rng = np.random.default_rng(5)
    X = rng.integers(1, 6, size=(60, 7)).astype(np.float64)
    X[rng.random(X.shape) < 0.45] = np.nan
    X[[4, 31]] = np.nan
    X[:, 5] = np.nan
    return X


X = _matrix()
MASK = ~np.isnan(X)
VALUES = np.where(MASK, X, 0.0)


def _params(diag=False):
    rng = np.random.default_rng(8)
    means = rng.uniform(1, 5, size=(3, 7))
    variances = rng.uniform(0.5, 2.0, size=(3, 7) if diag else 3)
    return Params(means, variances, np.array([0.2, 0.5, 0.3]))


@pytest.fixture(params=KINDS)
def source(request):
    kind = request.param
    if kind == "memory":
        yield as_source(X, backend="python")
        return
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        if os.environ.get("CI", "") == "true":
            pytest.fail(f"dask cannot be imported ({exc}) (CI=true: an error, not a skip)")
        pytest.skip(f"dask cannot be imported ({exc}); install fastem[dask]")
    with dask.config.set(scheduler="threads"):
        yield as_source(da.from_array(X, chunks=(13, -1)), backend="python",
                        for_fit=kind == "dask-persisted")


def _compute(result):
    return np.asarray(result.compute() if hasattr(result, "compute") else result)


# ---------------------------------------------------------------------------
# the dense oracle
# ---------------------------------------------------------------------------

def _sq_dist(centres):
    """|x_u - c_j|^2 over the observed entries: (n, len(centres))."""
    return np.stack([((VALUES - c) ** 2 * MASK).sum(axis=1) for c in centres], axis=1)


def _estep(params, weight_floor=1e-16):
    means, variances, weights = params
    counts = MASK.sum(axis=1)
    if variances.ndim == 1:
        log_joint = (-_sq_dist(means) / (2 * variances)
                     - 0.5 * counts[:, None] * np.log(2 * np.pi * variances))
    else:
        log_joint = np.stack([
            -(((VALUES - means[j]) ** 2 / (2 * variances[j])
               + 0.5 * np.log(2 * np.pi * variances[j])) * MASK).sum(axis=1)
            for j in range(means.shape[0])], axis=1)
    log_joint += np.log(weights + weight_floor)
    top = log_joint.max(axis=1, keepdims=True)
    row_loglik = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
    return np.exp(log_joint - row_loglik[:, None]), row_loglik


# ---------------------------------------------------------------------------
# the contract
# ---------------------------------------------------------------------------

def test_is_a_data_source_with_the_shape_of_the_matrix(source):
    assert isinstance(source, DataSource)
    assert source.shape == X.shape
    assert source.dtype == np.float64


@pytest.mark.parametrize("diag", [False, True])
def test_em_pass_gives_the_statistics_and_the_log_likelihood(source, diag):
    params = _params(diag)
    stats, log_likelihood = source.em_pass(params, weight_floor=1e-16)
    post, row_loglik = _estep(params)
    assert log_likelihood == pytest.approx(math.fsum(row_loglik), rel=RTOL)
    assert_allclose(stats.resp_sum, post.sum(axis=0), rtol=RTOL)
    assert_allclose(stats.resp_x_sum, post.T @ VALUES, rtol=RTOL)
    assert_allclose(stats.resp_obs_sum, post.T @ MASK, rtol=RTOL, atol=1e-12)
    if diag:
        expected = np.stack([post[:, j] @ ((VALUES - params.means[j]) ** 2 * MASK)
                             for j in range(3)])
    else:
        expected = (post * _sq_dist(params.means)).sum(axis=0)
    assert_allclose(stats.resp_sq_sum, expected, rtol=RTOL, atol=1e-12)


def test_sums_and_rows_for_the_initialisations(source):
    if source.nnz is not None:  # known once the blocks are built
        assert source.nnz == MASK.sum()
        assert source.max_abs == np.nanmax(np.abs(X))
    assert_array_equal(source.column_counts(), MASK.sum(axis=0))
    assert_allclose(source.column_sums(), VALUES.sum(axis=0), rtol=RTOL)
    fill = np.arange(7.0) + 0.5
    rows = [0, 4, 59, 31, 17]
    assert_array_equal(source.rows(rows, fill), np.where(MASK[rows], X[rows], fill))
    centres = np.array([[1.0] * 7, np.arange(7.0)])
    expected = np.stack([((VALUES - c) ** 2 * MASK).sum(axis=0) for c in centres])
    assert_allclose(source.centred_column_sq(centres), expected, rtol=RTOL)
    assert source.overall_variance() == pytest.approx(np.nanvar(X), rel=RTOL)


def test_seeding_follows_the_closest_centres(source):
    seeding = source.seeding()
    assert isinstance(seeding, Seeding)
    first = np.nan_to_num(X[0], nan=3.0)
    seeding.start(first)
    closest = _sq_dist([first])[:, 0]
    assert seeding.total() == pytest.approx(closest.sum(), rel=RTOL)
    draws = np.array([0.0, 0.3, 0.7, 0.999]) * closest.sum()
    assert_array_equal(seeding.locate(draws), np.searchsorted(np.cumsum(closest), draws))
    candidates = np.stack([np.nan_to_num(X[u], nan=2.0) for u in (10, 20, 30)])
    trial = np.minimum(closest[:, None], _sq_dist(candidates))
    assert_allclose(seeding.trial(candidates), trial.sum(axis=0), rtol=RTOL)
    seeding.keep(1)
    assert seeding.total() == pytest.approx(trial[:, 1].sum(), rel=RTOL)


def test_clustering_assigns_rows_to_the_nearest_mean(source):
    means = _params().means
    clustering = source.clustering(3)
    assert isinstance(clustering, Clustering)
    stats, unchanged = clustering.assign(means)
    assert not unchanged
    labels = _sq_dist(means).argmin(axis=1)
    one_hot = np.eye(3)[labels]
    assert_allclose(stats.resp_x_sum, one_hot.T @ VALUES, rtol=RTOL)
    assert_allclose(stats.resp_obs_sum, one_hot.T @ MASK, rtol=RTOL)
    seen = MASK.any(axis=1)
    assert_array_equal(clustering.sizes(), np.bincount(labels[seen], minlength=3))
    cluster_sq, counts = clustering.spread(means, False)
    deviations = (VALUES - means[labels]) ** 2 * MASK
    assert_allclose(cluster_sq, np.bincount(labels, deviations.sum(axis=1), minlength=3),
                    rtol=RTOL)
    assert_array_equal(counts, np.bincount(labels, MASK.sum(axis=1), minlength=3))
    _, unchanged = clustering.assign(means)
    assert unchanged


def test_predictions_of_every_row(source):
    params = _params()
    post, row_loglik = _estep(params)
    assert_allclose(_compute(source.map_rows(params, POSTERIORS)), post, rtol=RTOL,
                    atol=1e-14)
    assert_array_equal(_compute(source.map_rows(params, LABELS)), post.argmax(axis=1))
    assert_allclose(_compute(source.map_rows(params, ROW_LOGLIK)), row_loglik, rtol=RTOL)
    filled = np.where(MASK, X, post @ params.means)
    assert_allclose(_compute(source.map_rows(params, COMPLETED)), filled, rtol=RTOL)
    total, n_samples = source.total_log_likelihood(params)
    assert n_samples == X.shape[0]
    assert total == pytest.approx(math.fsum(row_loglik), rel=RTOL)
    rows, cols = [0, 4, 59, 59, 12], [0, 3, 5, 1, 6]
    assert_allclose(source.entries(params, rows, cols), filled[rows, cols], rtol=RTOL)
    with pytest.raises(ValueError, match="rows must lie in"):
        source.entries(params, [60], [0])


def test_both_kinds_agree_with_the_in_memory_observed_data():
    # The oracle's own input, through the public conversion: same entries.
    data = as_observed(X)
    assert data.nnz == MASK.sum()
    assert_array_equal(data.to_csr().toarray(), VALUES)
