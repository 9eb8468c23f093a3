"""select_n_components: the table, both criteria, and the held-out split."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from fastem import ConvergenceWarning, GaussianMixture, as_observed, select_n_components
from fastem._selection import heldout_log_likelihood, split_entries

COLUMNS = ["n_components", "log_likelihood", "bic", "aic", "n_iter", "converged",
           "fit_time"]


def _clusters(seed=0, n_per=60, d=6, k=3, missing_rate=0.3):
    """k well-separated groups of rows, NaN for missing entries."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, size=(k, d))
    X = np.concatenate([c + rng.normal(0, 1.0, size=(n_per, d)) for c in centres])
    X[rng.random(X.shape) < missing_rate] = np.nan
    return X


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_bic_finds_the_planted_number_of_groups():
    X = _clusters()
    result = select_n_components(X, [1, 2, 3, 4, 6], random_state=0, n_init=2,
                                 min_variance=0.0)
    table, best_k, best = result
    assert list(table) == COLUMNS
    assert_array_equal(table["n_components"], [1, 2, 3, 4, 6])
    assert best_k == 3 and best.n_components == 3
    assert table["bic"].argmin() == 2
    # The table's numbers are the models' own.
    assert_allclose(table["bic"][2], best.bic(X))
    assert_allclose(table["aic"][2], best.aic(X))
    assert_allclose(table["log_likelihood"][2], best.score_samples(X).sum())
    assert (table["fit_time"] > 0).all()


def test_heldout_criterion():
    X = _clusters(seed=1)
    table, best_k, best = select_n_components(
        X, [1, 3, 5], criterion="heldout", heldout_fraction=0.2, random_state=0,
        min_variance=0.0)
    assert "heldout_log_likelihood" in table
    assert best_k == int(table["n_components"][table["heldout_log_likelihood"].argmax()])
    assert table["heldout_log_likelihood"][1] > table["heldout_log_likelihood"][0]
    # refit=True: the best model is refitted on all the entries.
    refit = GaussianMixture(best_k, random_state=0, min_variance=0.0).fit(X)
    assert_allclose(best.means_, refit.means_)


def test_heldout_log_likelihood_is_conditional_log_likelihood():
    # For one component (a product of independent Gaussians), the held-out
    # log-likelihood is the sum of the held-out entries' own Gaussian log-densities.
    X = _clusters(seed=2, k=1)
    data = as_observed(X)
    train, (rows, cols, values) = split_entries(data, 0.25, 0)
    assert train.nnz + values.shape[0] == data.nnz
    model = GaussianMixture(1, min_variance=0.0).fit(train)
    mean, var = model.means_[0, cols], model.variances_[0]
    expected = math.fsum(-0.5 * np.log(2 * np.pi * var) - (values - mean) ** 2 / (2 * var))
    assert_allclose(heldout_log_likelihood(model, data, train), expected, rtol=1e-10)


def test_split_is_reproducible_and_disjoint():
    data = as_observed(_clusters(seed=3))
    train_a, held_a = split_entries(data, 0.1, 5)
    train_b, held_b = split_entries(data, 0.1, 5)
    assert_array_equal(train_a.data, train_b.data)
    for a, b in zip(held_a, held_b):
        assert_array_equal(a, b)
    rows, cols, values = held_a
    train_dense = train_a.to_csr().toarray()
    train_mask = sp.csr_matrix((np.ones(train_a.nnz), train_a.indices, train_a.indptr),
                               shape=data.shape).toarray()
    assert not train_mask[rows, cols].any()
    assert_array_equal(train_dense[train_mask > 0], data.to_csr().toarray()[train_mask > 0])


def test_sparse_and_dense_give_the_same_table():
    X = _clusters(seed=4)
    rows, cols = np.nonzero(~np.isnan(X))
    csr = sp.csr_matrix((X[rows, cols], (rows, cols)), shape=X.shape)
    dense = select_n_components(X, [1, 2], random_state=0).table
    sparse = select_n_components(csr, [1, 2], random_state=0).table
    for name in ("log_likelihood", "bic", "aic"):
        assert_allclose(dense[name], sparse[name], rtol=1e-10)


@pytest.mark.parametrize("kwargs, message", [
    ({"candidates": []}, "candidates"),
    ({"candidates": [0, 2]}, "candidates"),
    ({"candidates": [2.5]}, "candidates"),
    ({"candidates": [500]}, "n_samples=180"),
    ({"candidates": [2], "criterion": "aic"}, "criterion='aic'"),
    ({"candidates": [2], "heldout_fraction": 1.0}, "heldout_fraction=1.0"),
    ({"candidates": [2], "n_components": 3}, "candidates, not n_components"),
    ({"candidates": [2], "tol": -1.0}, "tol=-1.0"),
])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        select_n_components(_clusters(), **kwargs)
