"""Fuzzing: random valid and invalid input through both backends.

Valid problems (random shapes, sparsity patterns with empty rows and
columns, duplicated rows, float32 and float64, scales from 1e-150 to 1e150,
large offsets, int32 and int64 indices, 1 to 40 components) must give finite
results on which the two backends agree; invalid ones (corrupted CSR, CSC
and COO arrays, odd dtypes, non-finite or overflowing values) must raise a
ValueError or TypeError, never crash. The compiled kernels read the CSR
arrays through raw pointers, without bounds checks, so a crash would mean
that something invalid got past the validation in Python. CI also runs this
file against kernels built with bounds checking (FASTEM_CYTHON_DEBUG=1).
"""

import importlib
import math
import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import fastem
from fastem import ObservedData, _em, _memory, _pass, _validation, as_observed
from fastem._backend import get_backend

try:
    importlib.import_module("fastem._kernels")
    HAVE_COMPILED = True
except (ImportError, OSError):  # a pure install; CI requires the extension
    HAVE_COMPILED = os.environ.get("CI") == "true"  # then the tests fail, loudly
BACKENDS = ("python", "cython")
AVAILABLE = BACKENDS if HAVE_COMPILED else ("python",)
needs_compiled = pytest.mark.skipif(not HAVE_COMPILED, reason="compiled backend not built")
# FASTEM_FUZZ_EXAMPLES=1000 fuzzes longer than the default (150 examples a test).
FUZZ = settings(max_examples=int(os.environ.get("FASTEM_FUZZ_EXAMPLES", 150)),
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CLEAN_ERRORS = (ValueError, TypeError)  # NotFittedError, ModelFileError among them


@pytest.fixture(autouse=True)
def _quiet():
    # Overflow in NumPy arithmetic on purpose-made extreme values, and short
    # fits that stop at max_iter, are part of what is fuzzed here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


# ---------------------------------------------------------------------------
# valid problems
# ---------------------------------------------------------------------------

@st.composite
def problems(draw):
    """A valid (ObservedData, Params, min_variance) with its scale."""
    n = draw(st.integers(1, 150))
    d = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    scales = [1e-10, 1.0, 1e10] if dtype == np.float32 else [1e-150, 1e-3, 1.0, 1e150]
    scale = draw(st.sampled_from(scales))
    offset = draw(st.sampled_from([0.0, -3.0, 1e6])) * scale
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    groups = rng.uniform(0, 5, size=(draw(st.integers(1, 4)), d))
    X = groups[rng.integers(len(groups), size=n)]
    X = X + rng.normal(0, draw(st.sampled_from([0.0, 0.3])), size=X.shape)
    X = offset + scale * X
    if draw(st.booleans()) and n > 1:
        X[n // 2:] = X[: n - n // 2]  # duplicated rows
    mask = rng.random((n, d)) < draw(st.sampled_from([0.0, 0.3, 0.7, 0.95]))
    if draw(st.booleans()):
        mask[rng.integers(n)] = True  # a row with nothing observed
    if draw(st.booleans()):
        mask[:, rng.integers(d)] = True  # a column never observed
    X[mask] = np.nan
    data = as_observed(X, dtype=dtype)
    if data.nnz == 0:
        data = as_observed(np.where(np.isnan(X), offset + scale, X), dtype=dtype)
    if draw(st.booleans()):  # int64 indices
        data = ObservedData(data.data, data.indices.astype(np.int64),
                            data.indptr.astype(np.int64), d)
    k = draw(st.integers(1, min(n, 40)))
    rows = rng.choice(n, k, replace=False)
    filled = np.where(np.isnan(X), offset + 2.5 * scale, X)
    means = filled[rows].astype(dtype).astype(np.float64)
    # Above the floor: EM with a floor is monotone only from such parameters.
    if draw(st.booleans()):
        variances = scale**2 * rng.uniform(0.3, 3.0, size=(k, d))
    else:
        variances = scale**2 * rng.uniform(0.3, 3.0, size=k)
    weights = rng.dirichlet(np.ones(k))
    if k > 1 and draw(st.booleans()):
        weights[0] = 0.0  # a component without weight
        weights /= weights.sum()
    min_variance = 0.25 * scale**2
    n_threads = draw(st.integers(1, 3))
    return data, _validation.Params(means, variances, weights), min_variance, n_threads


def _row_tolerance(data):
    # Log-likelihoods are sums of |C_u| terms; an absolute floor per term
    # absorbs the different roundings of the two backends near 0.
    return 1e-8 * (1.0 + np.diff(data.indptr))


def _assert_close(got, expected, rtol, atol):
    """assert_allclose with an array of absolute tolerances (one per entry)."""
    bad = ~(np.abs(got - expected) <= atol + rtol * np.abs(expected))
    assert not bad.any(), (f"{bad.sum()} of {bad.size} differ; first: got "
                           f"{got[bad][:3]}, expected {expected[bad][:3]}")


def _assert_pass_agrees(data, params, n_threads, min_variance):
    """One fused pass on both backends from the same parameters: the results."""
    results = {}
    for backend in BACKENDS:
        k = params.means.shape[0]
        post, row_loglik = np.empty((data.n_samples, k)), np.empty(data.n_samples)
        stats = _pass.SufficientStats(k, data.n_features, params.variances.ndim == 2)
        _pass.fused_pass(data, params, post, row_loglik, stats, backend=backend,
                       n_threads=n_threads)
        results[backend] = (post, row_loglik, stats)
    (post_p, ll_p, stats_p), (post_c, ll_c, stats_c) = results.values()
    for array in (post_c, ll_c, *stats_c.arrays()):
        assert np.isfinite(array).all()
    if params.variances.ndim == 2:
        # The diag model's compiled pass by row groups (which small matrices
        # do not take by themselves) gives the row pass's results.
        grouped = [np.empty_like(post_c), np.empty_like(ll_c),
                   *(np.empty_like(a) for a in stats_c.arrays())]
        get_backend("cython").fused_pass(
            data.data, data.indices, data.indptr, params.means, params.variances,
            _pass.log_weights(params.weights, _pass.COURSE_WEIGHT_FLOOR), False,
            *grouped, n_threads, group_rows=1 + data.n_samples // 3)
        for got, expected in zip(grouped, (post_c, ll_c, *stats_c.arrays())):
            assert_allclose(got, expected, rtol=1e-10,
                            atol=1e-10 * np.max(np.abs(expected), initial=0.0) + 1e-300)
    assert_allclose(post_c, post_p, rtol=1e-8, atol=1e-8)
    _assert_close(ll_c, ll_p, rtol=1e-8, atol=_row_tolerance(data))
    total_p, total_c = _pass.total_loglik(ll_p), _pass.total_loglik(ll_c)
    assert math.isclose(total_c, total_p, rel_tol=1e-8,
                        abs_tol=1e-8 * (data.n_samples + data.nnz))
    # Sums of squares of values near 1e-150 can be subnormal, where float64
    # keeps few digits: below the smallest normal number nothing is compared.
    floor = 1e4 * np.finfo(np.float64).tiny
    for name, got, expected in zip(("n", "S1", "N", "R"), stats_c.arrays(),
                                   stats_p.arrays()):
        atol = 1e-8 * np.max(np.abs(expected), initial=0.0) + floor
        if name == "R":
            # The squared distances of a row to a mean it (nearly) equals are
            # differences of large terms in the pure backend: what matters is
            # their size next to the variance floor they are compared with.
            atol += 1e-8 * min_variance * (data.nnz + 1)
        assert_allclose(got, expected, rtol=1e-8, atol=atol, err_msg=name)
    return stats_p


@needs_compiled
@FUZZ
@given(problems())
def test_valid_problems_agree_across_backends_pass_by_pass(problem):
    data, params, min_variance, n_threads = problem
    # E-step alone.
    estep = [_pass.estep(data, params, backend=b, n_threads=n_threads) for b in BACKENDS]
    assert_allclose(estep[1][0], estep[0][0], rtol=1e-8, atol=1e-8)
    _assert_close(estep[1][1], estep[0][1], rtol=1e-8, atol=_row_tolerance(data))
    # A few iterations in lockstep: both backends make the pass from the same
    # parameters, so that a soft count that rounds to either side of the
    # threshold of 1 cannot make the runs drift apart.
    for _ in range(3):
        stats = _assert_pass_agrees(data, params, n_threads, min_variance)
        params, _ = _em.mstep(stats, params.means, params.variances, data.n_samples,
                              min_variance=min_variance)
        for array in params:
            assert np.isfinite(array).all()


@needs_compiled
@FUZZ
@given(problems())
def test_valid_problems_run_em_monotone_and_finite(problem):
    data, params, min_variance, n_threads = problem
    for backend in BACKENDS:
        seen = []
        result = _memory.run_em(data, params, tol=0.0, max_iter=6, min_variance=min_variance,
                            backend=backend, n_threads=n_threads,
                            callback=lambda it, ll: seen.append(ll))
        for array in (*result.params, result.post):
            assert np.isfinite(array).all()
        assert np.isfinite(seen).all()
        # EM never lowers the log-likelihood (up to the rounding of its sums).
        floor = 1e-9 * (np.abs(seen[1:]) + data.nnz + 1.0)
        assert (np.diff(seen) >= -floor).all(), np.diff(seen)


@st.composite
def estimator_inputs(draw):
    """A small dense-with-NaN matrix in one of the input forms the estimator takes."""
    n, d = draw(st.integers(2, 60)), draw(st.integers(1, 10))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.integers(1, 6, size=(n, d)).astype(np.float64)
    X += rng.normal(0, draw(st.sampled_from([0.0, 0.5])), size=X.shape)
    X[rng.random((n, d)) < draw(st.sampled_from([0.0, 0.4, 0.9]))] = np.nan
    X[0, 0] = 3.0  # at least one observed entry
    form = draw(st.sampled_from(["dense", "float32", "csr", "csc", "coo", "lil",
                                 "observed"]))
    if form in ("dense", "float32"):
        return X.astype(np.float32 if form == "float32" else np.float64), X
    observed = ~np.isnan(X)
    rows, cols = np.nonzero(observed)
    coo = sp.coo_matrix((X[observed], (rows, cols)), shape=X.shape)
    if form == "observed":
        return as_observed(X), X
    return coo.asformat(form), X


@needs_compiled
@FUZZ
@given(estimator_inputs(), st.integers(1, 6), st.sampled_from(["spherical", "diag"]),
       st.sampled_from(["k-means++", "random_from_data", "course"]))
def test_estimator_agrees_across_backends(inputs, k, covariance_type, init_params):
    X, X_nan = inputs
    k = min(k, X_nan.shape[0])
    model = fastem.GaussianMixture(k, covariance_type=covariance_type,
                                   init_params=init_params, max_iter=5,
                                   random_state=0, backend="python").fit(X)
    for name in ("weights_", "means_", "variances_"):
        assert np.isfinite(getattr(model, name)).all()
    assert np.isfinite(model.log_likelihood_)
    # The fitted model's predictions, from the same parameters, on both backends.
    outputs = {}
    for backend in BACKENDS:
        model.backend = backend
        outputs[backend] = (model.predict_proba(X), model.score_samples(X),
                            model.fill(X), model.score(X))
    python, cython = outputs.values()
    counts = (~np.isnan(X_nan)).sum(axis=1)
    assert_allclose(cython[0], python[0], rtol=1e-8, atol=1e-8)
    _assert_close(cython[1], python[1], rtol=1e-8, atol=1e-8 * (1 + counts))
    # 1e-6: float32 input gets a float32 fill.
    assert_allclose(cython[2], python[2], rtol=1e-6, atol=1e-6)
    assert np.isfinite(cython[2]).all()
    assert math.isclose(cython[3], python[3], rel_tol=1e-8,
                        abs_tol=1e-8 * (1 + counts.max()))


# ---------------------------------------------------------------------------
# invalid input
# ---------------------------------------------------------------------------

_INDEX_DTYPES = [np.int32, np.int64, np.int16, np.uint32, np.uint64, np.float64, np.int8]
_VALUE_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.uint8, bool, complex,
                 object, "U3", "datetime64[s]"]
_EXTREMES = [np.nan, np.inf, -np.inf, 1e308, -1e308, 1e200, 5e-324, 0.0, 3.4e38]


@st.composite
def corrupted_matrices(draw):
    """A scipy.sparse matrix, or raw CSR arrays, with zero or more corruptions."""
    n, d = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dense = np.where(rng.random((n, d)) < 0.6, rng.integers(1, 6, (n, d)), 0.0)
    fmt = draw(st.sampled_from(["csr", "csc", "coo", "bsr", "raw"]))
    matrix = sp.csr_matrix(dense) if fmt == "raw" else sp.csr_matrix(dense).asformat(fmt)
    if fmt == "coo":
        arrays = {"data": matrix.data, "row": matrix.row, "col": matrix.col}
    else:
        arrays = {"data": matrix.data, "indices": matrix.indices, "indptr": matrix.indptr}
    arrays = {name: np.array(value) for name, value in arrays.items()}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(arrays)))
        array = arrays[name]
        how = draw(st.sampled_from(["value", "length", "dtype", "reverse", "extreme"]))
        if how == "value" and array.size:
            try:
                array.flat[draw(st.integers(0, array.size - 1))] = draw(
                    st.integers(-20, 20))
            except (TypeError, ValueError):
                pass  # a dtype that takes no integer (datetime64)
        elif how == "length":
            if draw(st.booleans()) and array.shape[0]:
                array = array[:-1]
            else:
                array = np.concatenate([array, np.zeros((1,) + array.shape[1:],
                                                        array.dtype)])
        elif how == "dtype":
            dtypes = _VALUE_DTYPES if name == "data" else _INDEX_DTYPES
            try:
                array = array.astype(draw(st.sampled_from(dtypes)))
            except (TypeError, ValueError):
                pass
        elif how == "reverse":
            array = array[::-1].copy()
        elif how == "extreme" and name == "data" and array.size:
            array = array.astype(np.float64)
            array.flat[draw(st.integers(0, array.size - 1))] = draw(
                st.sampled_from(_EXTREMES))
        arrays[name] = array
    return fmt, matrix, arrays, (n, d)


def _build(fmt, matrix, arrays, shape):
    """The corrupted input; scipy may refuse some corruptions itself (fine)."""
    if fmt == "raw":
        return ObservedData(arrays["data"], arrays["indices"], arrays["indptr"],
                            shape[1])
    for name, value in arrays.items():
        setattr(matrix, name, value)  # no check by scipy after construction
    return matrix


@FUZZ
@given(corrupted_matrices(), st.sampled_from(["fit", "predict", "fill", "select"]),
       st.sampled_from(AVAILABLE))
def test_corrupted_sparse_input_is_refused_cleanly(case, entry, backend):
    fmt, matrix, arrays, shape = case
    try:
        X = _build(fmt, matrix, arrays, shape)
        if entry == "fit":
            model = fastem.GaussianMixture(1, max_iter=3, backend=backend,
                                           random_state=0).fit(X)
            result = np.concatenate([model.means_.ravel(), model.variances_.ravel()])
        elif entry == "select":
            _, _, model = fastem.select_n_components(X, [1], max_iter=2,
                                                     backend=backend, random_state=0)
            result = model.means_
        else:
            model = fastem.GaussianMixture(1, backend=backend, random_state=0).fit(
                np.ones((2, shape[1])))
            result = getattr(model, entry)(X)
    except CLEAN_ERRORS:
        return
    assert np.isfinite(result).all()


@FUZZ
@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from(_VALUE_DTYPES),
       st.lists(st.sampled_from(_EXTREMES), max_size=3), st.integers(0, 2**32 - 1),
       st.sampled_from(AVAILABLE))
def test_odd_dense_input_is_refused_cleanly(n, d, dtype, extremes, seed, backend):
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 6, size=(n, d)).astype(np.float64)
    for value in extremes:
        X[rng.integers(n), rng.integers(d)] = value
    try:
        X = X.astype(dtype)
    except (TypeError, ValueError, OverflowError):
        return
    try:
        model = fastem.GaussianMixture(1, max_iter=3, backend=backend,
                                       random_state=0).fit(X)
        result = np.concatenate([model.means_.ravel(), model.variances_.ravel(),
                                 model.score_samples(X)])
    except CLEAN_ERRORS:
        return
    assert np.isfinite(result).all()
