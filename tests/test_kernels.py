"""The compiled kernels against the pure backend, and the backend plumbing."""

import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import fastem
import fastem._pure
from fastem import ObservedData, _memory, _pass, _validation, as_observed

try:
    from fastem import _kernels
except ImportError:  # the pure-only install; CI requires the extension
    _kernels = None

ON_CI = os.environ.get("CI") == "true"
needs_compiled = pytest.mark.skipif(
    _kernels is None and not ON_CI, reason="compiled extension not built"
)


def _random_problem(seed, n_samples, n_features, n_components, missing_rate,
                    dtype=np.float64, empty_rows=True):
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 6, size=(n_samples, n_features)).astype(np.float64)
    X += rng.normal(0, 0.3, size=X.shape)
    X[rng.random(X.shape) < missing_rate] = np.nan
    if empty_rows and n_samples > 2:
        X[rng.integers(n_samples)] = np.nan
    data = as_observed(X, dtype=dtype)
    params = _validation.Params(
        rng.uniform(1, 5, size=(n_components, n_features)),
        rng.uniform(0.3, 3.0, size=n_components),
        rng.dirichlet(np.ones(n_components)),
    )
    return data, params


def _fused(data, params, backend, n_threads=1, hard=False):
    n_components = params.means.shape[0]
    post = np.empty((data.n_samples, n_components))
    row_loglik = np.empty(data.n_samples)
    stats = _pass.SufficientStats(n_components, data.n_features, params.variances.ndim == 2)
    _pass.fused_pass(data, params, post, row_loglik, stats, hard=hard,
                   backend=backend, n_threads=n_threads)
    return {"post": post, "row_loglik": row_loglik, "resp_sum": stats.resp_sum,
            "resp_x_sum": stats.resp_x_sum, "resp_obs_sum": stats.resp_obs_sum,
            "resp_sq_sum": stats.resp_sq_sum}


def _assert_same(got, expected, rtol):
    for name in expected:
        scale = np.max(np.abs(expected[name]), initial=1.0)
        # Posteriors are probabilities and sums cancel nothing: an absolute
        # floor relative to the array's scale absorbs values that are 0 in
        # one backend and 1e-300 in the other.
        assert_allclose(got[name], expected[name], rtol=rtol, atol=rtol * scale,
                        err_msg=name)


problems = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "n_samples": st.integers(1, 2000),
    "n_features": st.integers(1, 300),
    "n_components": st.integers(1, 40),
    "missing_rate": st.sampled_from([0.0, 0.3, 0.8, 0.95, 0.995]),
    "dtype": st.sampled_from([np.float64, np.float32]),
})


@needs_compiled
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems, n_threads=st.sampled_from([1, 2]), hard=st.booleans())
def test_fused_pass_compiled_matches_pure(problem, n_threads, hard):
    data, params = _random_problem(**problem)
    expected = _fused(data, params, "python", hard=hard)
    got = _fused(data, params, "cython", n_threads=n_threads, hard=hard)
    _assert_same(got, expected, rtol=1e-10)


@needs_compiled
@pytest.mark.parametrize("diag", [False, True])
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("shuffled", [False, True])
def test_complete_and_incomplete_rows_mixed(diag, n_threads, shuffled):
    # Complete rows take their own paths through the pass (their counts are
    # added once per row; two in a row share their updates, also when their
    # columns come in different orders); rows with an entry missing, or
    # none observed, take the general one.
    data, params = _random_problem(5, 700, 30, 12, 0.0, empty_rows=False)
    X = data.to_csr().toarray()
    rng = np.random.default_rng(5)
    X[rng.random(700) < 0.4, rng.integers(30)] = np.nan
    X[rng.random((700, 30)) < 0.02] = np.nan
    X[3] = np.nan
    data = as_observed(X)
    assert 0 < np.sum(data.row_counts == 30) < 700
    if shuffled:
        order = np.concatenate([start + rng.permutation(stop - start) for start, stop
                                in zip(data.indptr[:-1], data.indptr[1:])])
        data = ObservedData(data.data[order], data.indices[order], data.indptr, 30)
    if diag:
        params = params._replace(variances=np.random.default_rng(6).uniform(
            0.3, 3.0, size=params.means.shape))
    expected = _fused(data, params, "python")
    got = _fused(data, params, "cython", n_threads=n_threads)
    for name in expected:
        assert_allclose(got[name], expected[name], rtol=1e-12,
                        atol=1e-12 * np.abs(expected[name]).max(), err_msg=name)


@needs_compiled
@settings(max_examples=25, deadline=None)
@given(problem=problems, n_threads=st.sampled_from([1, 2]))
def test_estep_compiled_matches_pure(problem, n_threads):
    data, params = _random_problem(**problem)
    post_py, ll_py = _pass.estep(data, params, backend="python")
    post_c, ll_c = _pass.estep(data, params, backend="cython", n_threads=n_threads)
    assert_allclose(post_c, post_py, rtol=1e-10, atol=1e-10)
    # A row's log-likelihood can cancel to ~0: absolute slack on the O(1) terms.
    assert_allclose(ll_c, ll_py, rtol=1e-10, atol=1e-10 * (1 + np.max(np.abs(ll_py))))
    # The fused pass's E-step is the same E-step.
    fused = _fused(data, params, "cython", n_threads=n_threads)
    assert_allclose(fused["post"], post_c, rtol=1e-14, atol=1e-14)
    assert_allclose(fused["row_loglik"], ll_c, rtol=1e-14)


@needs_compiled
@pytest.mark.parametrize("n_components", [1, 4, 12, 13, 33, 40])
def test_thread_count_does_not_change_results(n_components):
    data, params = _random_problem(7, 3000, 50, n_components, 0.7)
    one = _fused(data, params, "cython", n_threads=1)
    two = _fused(data, params, "cython", n_threads=2)
    for name in one:
        assert_allclose(two[name], one[name], rtol=1e-12, atol=1e-300, err_msg=name)


@needs_compiled
def test_portable_and_avx2_builds_agree():
    try:
        from fastem import _kernels_avx2
    except ImportError:
        pytest.skip("no AVX2 build on this platform")
    if not _kernels.cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2/FMA")
    data, params = _random_problem(3, 500, 40, 12, 0.6)
    results = []
    for module in (_kernels, _kernels_avx2):
        K = 12
        out = [np.empty((500, K)), np.empty(500), np.empty(K), np.empty((K, 40)),
               np.empty((K, 40)), np.empty(K)]
        module.fused_pass(data.data, data.indices, data.indptr, params.means,
                          params.variances, _pass.log_weights(params.weights, 1e-16),
                          False, *out, 1)
        results.append(out)
    for a, b in zip(*results):
        assert_allclose(a, b, rtol=1e-12, atol=1e-300)



@needs_compiled
@pytest.mark.parametrize("module_name", ["_kernels", "_kernels_avx2"])
def test_posteriors_exact_over_the_whole_range_of_exp(module_name):
    # One column, means 3 apart, variance 0.5: the log-posterior gaps of a
    # row, -(x - m_j)^2 + min_j (x - m_j)^2, run from 0 past exp's underflow
    # (-745). The kernels' exponential (vectorised in the AVX2 build) must
    # match NumPy's to rounding; posteriors below the smallest normal double
    # come out as 0.
    module = pytest.importorskip(f"fastem.{module_name}")
    if module_name == "_kernels_avx2" and not module.cpu_has_avx2_fma():
        pytest.skip("this CPU has no AVX2/FMA")
    K = 12
    x = np.random.default_rng(11).uniform(-5.0, 38.0, size=4000)
    x[:4] = [0.0, 33.0, 16.5, 1.5]
    data = as_observed(x[:, None])
    means = 3.0 * np.arange(K, dtype=np.float64)[:, None]
    variances = np.full(K, 0.5)
    log_weights = np.log(np.full(K, 1.0 / K))
    post = np.empty((x.size, K))
    row_loglik = np.empty(x.size)
    module.estep_pass(data.data, data.indices, data.indptr, means, variances,
                      log_weights, post, row_loglik, 1)
    log_p = log_weights - 0.5 * np.log(2 * np.pi * variances) - (x[:, None] - means.T) ** 2
    top = log_p.max(axis=1, keepdims=True)
    expected = np.exp(log_p - top)
    total = expected.sum(axis=1, keepdims=True)
    assert ((log_p - top) < -745.2).any() and ((log_p - top) > -708).any()
    tiny = np.finfo(np.float64).tiny
    expected /= total
    assert ((expected > 0) & (expected < tiny)).any()  # subnormals are tested
    assert not ((post > 0) & (post < tiny)).any()
    expected[expected < tiny] = 0.0
    assert_allclose(post, expected, rtol=1e-13, atol=4 * tiny)
    assert_allclose(row_loglik, (top + np.log(total)).ravel(), rtol=1e-14)

@needs_compiled
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_whole_fit_compiled_matches_pure(dtype, n_threads):
    data, params = _random_problem(11, 800, 30, 6, 0.5, dtype=dtype)
    fits = [_memory.run_em(data, params, max_iter=30, backend=backend, n_threads=n_threads)
            for backend in ("python", "cython")]
    assert fits[0].n_iter == fits[1].n_iter
    assert_allclose(fits[1].log_likelihood, fits[0].log_likelihood, rtol=1e-10)
    for got, expected in zip(fits[1].params, fits[0].params):
        assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=needs_compiled)])
def test_float32_data_fit_close_to_float64(backend):
    data64, params = _random_problem(5, 600, 25, 4, 0.4)
    data32 = as_observed(data64, dtype=np.float32)
    values64 = as_observed(data32, dtype=np.float64)  # the same rounded values
    fit32 = _memory.run_em(data32, params, max_iter=20, backend=backend)
    fit64 = _memory.run_em(values64, params, max_iter=20, backend=backend)
    assert_allclose(fit32.log_likelihood, fit64.log_likelihood, rtol=1e-12)
    fit_orig = _memory.run_em(data64, params, max_iter=20, backend=backend)
    assert_allclose(fit32.log_likelihood, fit_orig.log_likelihood, rtol=1e-4)
    assert_allclose(fit32.params.means, fit_orig.params.means, rtol=1e-4)


@needs_compiled
def test_int64_indices_match_int32():
    data, params = _random_problem(9, 300, 20, 5, 0.5)
    wide = type(data)(data.data, data.indices.astype(np.int64),
                      data.indptr.astype(np.int64), data.n_features)
    _assert_same(_fused(wide, params, "cython"), _fused(data, params, "cython"), 1e-14)


@needs_compiled
def test_kernel_rejects_mismatched_shapes():
    data, params = _random_problem(1, 10, 4, 3, 0.2)
    lw = np.log(params.weights)
    post, ll = np.empty((10, 3)), np.empty(10)
    with pytest.raises(ValueError, match="post"):
        _kernels.estep_pass(data.data, data.indices, data.indptr, params.means,
                            params.variances, lw, np.empty((9, 3)), ll, 1)
    with pytest.raises(ValueError, match="variances"):
        _kernels.estep_pass(data.data, data.indices, data.indptr, params.means,
                            params.variances[:2], lw, post, ll, 1)
    with pytest.raises(ValueError, match="positive"):
        _kernels.estep_pass(data.data, data.indices, data.indptr, params.means,
                            -params.variances, lw, post, ll, 1)
    with pytest.raises(ValueError, match="indptr"):
        _kernels.estep_pass(data.data, data.indices, data.indptr[:-1], params.means,
                            params.variances, lw, post[:9], ll[:9], 1)
    with pytest.raises(ValueError, match="n_threads"):
        _kernels.estep_pass(data.data, data.indices, data.indptr, params.means,
                            params.variances, lw, post, ll, 0)
    with pytest.raises(ValueError, match="statistics"):
        _kernels.fused_pass(data.data, data.indices, data.indptr, params.means,
                            params.variances, lw, False, post, ll, np.empty(3),
                            np.empty((3, 5)), np.empty((3, 4)), np.empty(3), 1)


def test_driver_rejects_bad_buffers_and_params(backend):
    data, params = _random_problem(1, 10, 4, 3, 0.2)
    with pytest.raises(ValueError, match="post"):
        _pass.estep(data, params, backend=backend, post=np.empty((10, 3), order="F")[:, :2])
    with pytest.raises(ValueError, match="n_threads"):
        _pass.estep(data, params, backend=backend, n_threads=0)
    with pytest.raises(ValueError, match="features"):
        _pass.estep(data, params._replace(means=params.means[:, :3]), backend=backend)
    with pytest.raises(ValueError, match="collapsed"):
        _pass.estep(data, params._replace(variances=np.zeros(3)), backend=backend)
    with pytest.raises(TypeError, match="ObservedData"):
        _pass.estep(np.ones((10, 4)), params, backend=backend)
    with pytest.raises(ValueError, match="max_iter"):
        _memory.run_em(data, params, max_iter=0, backend=backend)


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "FASTEM_BACKEND"}
    environment.update(env)
    # Run outside the source tree, so that the installed package is imported.
    return subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, env=environment, cwd=tempfile.gettempdir())


def test_backend_env_var_forces_pure():
    result = _python("import fastem; print(fastem.backend_info()['backend'])",
                     FASTEM_BACKEND="python")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "python"


def test_backend_env_var_rejects_unknown_value():
    result = _python("import fastem; fastem.backend_info()", FASTEM_BACKEND="fortran")
    assert result.returncode != 0
    assert "FASTEM_BACKEND" in result.stderr


def test_missing_extension_falls_back_with_one_warning_or_raises_when_required():
    # A None entry in sys.modules makes the import fail, as a missing file would.
    block = ("import sys, warnings\n"
             "sys.modules['fastem._kernels'] = None\n"
             "sys.modules['fastem._kernels_avx2'] = None\n"
             "import fastem\n")
    fallback = _python(block + (
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    a = fastem.backend_info()['backend']\n"
        "    b = fastem.backend_info()['backend']\n"
        "print(a, b, len(w))\n"))
    assert fallback.returncode == 0, fallback.stderr
    assert fallback.stdout.split() == ["python", "python", "1"]
    required = _python(block + "fastem.backend_info()", FASTEM_BACKEND="cython")
    assert required.returncode != 0
    assert "ImportError" in required.stderr


@needs_compiled
def test_backend_info_describes_compiled_build():
    info = fastem.backend_info("cython")
    assert info["backend"] == "cython"
    assert isinstance(info["openmp"], bool)
    assert info["max_threads"] >= 1
    assert info["simd"] in ("avx2", "baseline")
    assert "-O" in info["build_flags"] or "/O" in info["build_flags"]
    limited = _python("import fastem; print(fastem.backend_info('cython')['max_threads'])",
                      OMP_NUM_THREADS="1")
    assert limited.stdout.strip() == "1", limited.stderr


@pytest.mark.skipif(not ON_CI, reason="only CI must prove the compiled, threaded build")
def test_ci_has_compiled_openmp_backend():
    info = fastem.backend_info("cython")
    assert info["backend"] == "cython" and info["openmp"], info


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=needs_compiled)])
@pytest.mark.parametrize("n_centres", [1, 4, 5, 12, 33])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sq_distances_match_dense_oracle(backend, n_centres, dtype, monkeypatch):
    # Small blocks of rows in the pure backend, so that several are used.
    monkeypatch.setattr(fastem._pure, "_BLOCK_ENTRIES", 97)
    data, _ = _random_problem(4, 900, 25, 1, 0.6, dtype=dtype)
    X = data.to_csr().toarray()
    observed = np.zeros(X.shape, dtype=bool)
    observed[np.repeat(np.arange(900), np.diff(data.indptr)), data.indices] = True
    centres = np.random.default_rng(4).uniform(1, 5, size=(n_centres, 25)) + 1e3
    expected = np.stack([((X - c) ** 2 * observed).sum(axis=1) for c in centres], axis=1)
    for n_threads in (1, 2):
        got = _pass.sq_distances(data, centres, backend=backend, n_threads=n_threads)
        assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    assert (got[np.diff(data.indptr) == 0] == 0).all()
    with pytest.raises(ValueError, match="centres must have shape"):
        _pass.sq_distances(data, centres[:, :3], backend=backend)
    with pytest.raises(ValueError, match="out must be"):
        _pass.sq_distances(data, centres, backend=backend, out=np.empty((3, n_centres)))


@pytest.mark.parametrize("backend", ["python", pytest.param("cython", marks=needs_compiled)])
def test_exact_sum_rounds_like_fsum(backend):
    rng = np.random.default_rng(8)
    scales = rng.choice([5e-324, 1e-310, 1e-300, 1.0, 1e16, 1e200, 1e300], size=20_000)
    values = rng.normal(size=20_000) * scales
    values[:4] = [1e308, -1e308, 2.0**-1074, -(2.0**-1074)]
    cancel = np.array([1e100, 1.0, -1e100, 1e-100])
    for x in (values, cancel, values[:1], np.empty(0), -np.abs(values[4:])):
        blocks = np.array_split(x, 7)
        total = sum(_pass.exact_sum(block, backend=backend) for block in blocks)
        assert _pass.exact_to_float(total) == math.fsum(x)
    with pytest.raises(ValueError, match="overflows"):
        _pass.exact_to_float(_pass.exact_sum(np.array([1.5e308, 1.5e308]), backend=backend))
    for bad in (np.inf, -np.inf, np.nan):
        with pytest.raises(ValueError, match="finite"):
            _pass.exact_sum(np.array([1.0, bad]), backend=backend)


@needs_compiled
@pytest.mark.parametrize("n_components", [36, 45, 48, 49])
@pytest.mark.parametrize("diag", [False, True])
def test_wide_components_match_pure(n_components, diag):
    # Above 32 components: the unrolled width 48 (K = 45..48) and the
    # generic width (K = 36, 49), complete and incomplete rows.
    data, params = _random_problem(9, 600, 20, n_components, 0.3)
    if diag:
        params = params._replace(variances=np.random.default_rng(9).uniform(
            0.3, 3.0, size=params.means.shape))
    results = []
    for backend in ("python", "cython"):
        result = _fused(data, params, backend, n_threads=2)
        result["estep_post"], _ = _pass.estep(data, params, backend=backend, n_threads=2)
        result["dist"] = _pass.sq_distances(data, params.means, backend=backend, n_threads=2)
        results.append(result)
    expected, got = results
    for name in expected:
        assert_allclose(got[name], expected[name], rtol=1e-10,
                        atol=1e-10 * np.abs(expected[name]).max(), err_msg=name)


# ---------------------------------------------------------------------------
# the pass by row groups, each group's entries in column order
# ---------------------------------------------------------------------------

def _assert_same_fit(got, expected):
    """Two fits that read the entries in other orders: the same run, to rounding."""
    assert got.n_iter_ == expected.n_iter_
    assert_allclose(got.log_likelihood_, expected.log_likelihood_, rtol=1e-12)
    for name in ("weights_", "means_", "variances_"):
        assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-10,
                        err_msg=name)


def _kernel_modules():
    """The compiled builds this CPU runs: the portable one, and the AVX2 one."""
    modules = [_kernels]
    try:
        from fastem import _kernels_avx2
    except ImportError:
        return modules
    return modules + [_kernels_avx2] if _kernels.cpu_has_avx2_fma() else modules


def _grouped(module, data, params, group_rows, n_threads=1):
    """The compiled fused pass with ``group_rows`` rows per group (0: by rows)."""
    n_components = params.means.shape[0]
    post = np.empty((data.n_samples, n_components))
    row_loglik = np.empty(data.n_samples)
    stats = _pass.SufficientStats(n_components, data.n_features, params.variances.ndim == 2)
    module.fused_pass(data.data, data.indices, data.indptr, params.means, params.variances,
                      _pass.log_weights(params.weights, _pass.COURSE_WEIGHT_FLOOR), False,
                      post, row_loglik, *stats.arrays(), n_threads, group_rows=group_rows)
    return {"post": post, "row_loglik": row_loglik, "resp_sum": stats.resp_sum,
            "resp_x_sum": stats.resp_x_sum, "resp_obs_sum": stats.resp_obs_sum,
            "resp_sq_sum": stats.resp_sq_sum}


def _diag(params, n_features, seed):
    """``params`` with one variance per component and column."""
    rng = np.random.default_rng(seed)
    n_components = params.means.shape[0]
    return params._replace(variances=rng.uniform(0.3, 3.0, (n_components, n_features)))


@needs_compiled
@pytest.mark.parametrize("n_components", [1, 3, 8, 12, 13, 48, 50])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_group_pass_gives_the_statistics_of_the_row_pass(n_components, dtype):
    # Groups of one row, of a few, of more rows than the matrix has; empty
    # rows and columns; 1e-12 relative, rounding of other orders.
    data, params = _random_problem(5, 150, 90, n_components, 0.8, dtype=dtype)
    params = _diag(params, 90, 6)
    for module in _kernel_modules():
        expected = _grouped(module, data, params, 0)
        for group_rows in (1, 7, 64, 1000):
            for n_threads in (1, 2, 3):
                _assert_same(_grouped(module, data, params, group_rows, n_threads),
                             expected, 1e-12)


@needs_compiled
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems, n_threads=st.sampled_from([1, 2]), group_rows=st.integers(1, 300))
def test_group_pass_compiled_matches_pure(problem, n_threads, group_rows):
    data, params = _random_problem(**problem)
    params = _diag(params, data.n_features, problem["seed"])
    expected = _fused(data, params, "python")
    module = _kernel_modules()[-1]
    _assert_same(_grouped(module, data, params, group_rows, n_threads), expected, 1e-10)


@needs_compiled
def test_group_pass_int64_indices_and_no_entries():
    data, params = _random_problem(9, 30, 200, 5, 0.5)
    params = _diag(params, 200, 1)
    wide = ObservedData(data.data, data.indices.astype(np.int64),
                        data.indptr.astype(np.int64), data.n_features)
    _assert_same(_grouped(_kernels, wide, params, 4), _grouped(_kernels, data, params, 0),
                 1e-12)
    empty = as_observed(np.full((6, 9), np.nan))
    narrow = params._replace(means=np.ascontiguousarray(params.means[:, :9]),
                             variances=np.ascontiguousarray(params.variances[:, :9]))
    nothing = _grouped(_kernels, empty, narrow, 4)
    assert_allclose(nothing["post"], np.broadcast_to(params.weights, (6, 5)), rtol=1e-12)
    assert not nothing["resp_x_sum"].any() and not nothing["resp_obs_sum"].any()


@needs_compiled
def test_group_pass_rejects_a_bad_group_size_and_the_spherical_model():
    data, params = _random_problem(1, 10, 4, 3, 0.2)
    with pytest.raises(ValueError, match="diag"):
        _grouped(_kernels, data, params, 2)
    params = _diag(params, 4, 0)
    with pytest.raises(ValueError, match="group_rows"):
        _grouped(_kernels, data, params, -1)
    with pytest.raises(TypeError):
        _grouped(_kernels, data, params, 2.5)


@needs_compiled
def test_the_passes_rule_groups_only_large_sparse_matrices_of_the_diag_model():
    def indptr(n_samples, per_row):
        return np.arange(n_samples + 1, dtype=np.int64) * per_row

    netflix = indptr(480_189, 42)  # 20M ratings on the Netflix shape
    assert _kernels.pass_group_rows(netflix, 17_770, 8, diag=True) == _kernels.GROUP_ROWS
    # The spherical model; blocks small enough for the caches (few columns or
    # components); too few rows; too few entries per column for a group; a
    # group too large to copy.
    assert _kernels.pass_group_rows(netflix, 17_770, 32) == 0
    assert _kernels.pass_group_rows(netflix, 500, 8, diag=True) == 0
    assert _kernels.pass_group_rows(netflix, 17_770, 4, diag=True) == 0
    assert _kernels.pass_group_rows(indptr(5000, 42), 17_770, 8, diag=True) == 0
    assert _kernels.pass_group_rows(indptr(480_189, 2), 17_770, 8, diag=True) == 0
    assert _kernels.pass_group_rows(indptr(480_189, 17_770), 17_770, 8, diag=True) == 0


@needs_compiled
def test_fit_by_row_groups_equals_the_fit_by_rows(monkeypatch):
    data, _ = _random_problem(5, 300, 120, 4, 0.7)
    settings = dict(n_components=4, covariance_type="diag", random_state=0,
                    init_params="random_from_data", backend="cython", tol=1e-10)
    by_rows = fastem.GaussianMixture(**settings).fit(data)
    module = fastem._backend.get_backend("cython")
    monkeypatch.setattr(module, "GROUP_ROWS", 16)
    monkeypatch.setattr(module, "GROUP_MIN_BLOCK_BYTES", 0)
    assert module.pass_group_rows(data.indptr, 120, 4, diag=True) == 16
    _assert_same_fit(fastem.GaussianMixture(**settings).fit(data), by_rows)


# ---------------------------------------------------------------------------
# the pass that reads the matrix column by column
# ---------------------------------------------------------------------------

def _transpose(data):
    """The ObservedData of ``data``'s transpose."""
    by_column = data.to_csr().T.tocsr()
    return ObservedData(by_column.data, by_column.indices, by_column.indptr,
                        data.n_samples)


def _column_fused(data, params, backend, n_threads=1, columns=None):
    n_components = params.means.shape[0]
    post = np.empty((data.n_samples, n_components))
    row_loglik = np.empty(data.n_samples)
    stats = _pass.SufficientStats(n_components, data.n_features, params.variances.ndim == 2)
    _pass.column_fused_pass(_transpose(data) if columns is None else columns,
                            data.row_counts, params, post, row_loglik, stats,
                            backend=backend, n_threads=n_threads)
    return {"post": post, "row_loglik": row_loglik, "resp_sum": stats.resp_sum,
            "resp_x_sum": stats.resp_x_sum, "resp_obs_sum": stats.resp_obs_sum,
            "resp_sq_sum": stats.resp_sq_sum}


@pytest.mark.parametrize("diag", [False, True])
@pytest.mark.parametrize("n_components", [1, 3, 8, 12, 13, 48, 50])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_pass_gives_the_statistics_of_the_row_pass(backend, diag, n_components,
                                                          dtype):
    # Rows few, columns many (where the column pass is meant to serve), an
    # empty row and empty columns; 1e-12 relative, rounding of other orders.
    data, params = _random_problem(3, 40, 700, n_components, 0.8, dtype=dtype)
    if diag:
        rng = np.random.default_rng(4)
        params = params._replace(variances=rng.uniform(0.3, 3.0, (n_components, 700)))
    expected = _fused(data, params, backend)
    for n_threads in (1, 2, 3):
        _assert_same(_column_fused(data, params, backend, n_threads), expected, 1e-12)


@needs_compiled
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems, n_threads=st.sampled_from([1, 2]))
def test_column_pass_compiled_matches_pure(problem, n_threads):
    data, params = _random_problem(**problem)
    expected = _fused(data, params, "python")
    _assert_same(_column_fused(data, params, "cython", n_threads), expected, 1e-10)


@needs_compiled
def test_column_pass_int64_indices_and_no_entries():
    data, params = _random_problem(9, 30, 200, 5, 0.5)
    columns = _transpose(data)
    wide = ObservedData(columns.data, columns.indices.astype(np.int64),
                        columns.indptr.astype(np.int64), columns.n_features)
    _assert_same(_column_fused(data, params, "cython", columns=wide),
                 _fused(data, params, "cython"), 1e-12)
    empty = as_observed(np.full((6, 9), np.nan))
    nothing = _column_fused(empty, params._replace(means=params.means[:, :9]), "cython")
    assert_allclose(nothing["post"], np.broadcast_to(params.weights, (6, 5)), rtol=1e-12)
    assert not nothing["resp_x_sum"].any() and not nothing["resp_obs_sum"].any()


def test_column_pass_rejects_mismatched_input(backend):
    data, params = _random_problem(1, 10, 4, 3, 0.2)
    columns = _transpose(data)
    post, ll = np.empty((10, 3)), np.empty(10)
    stats = _pass.SufficientStats(3, 4, False)
    with pytest.raises(TypeError, match="ObservedData"):
        _pass.column_fused_pass(data.to_csr().T, data.row_counts, params, post, ll, stats,
                                backend=backend)
    with pytest.raises(ValueError, match="row_counts"):
        _pass.column_fused_pass(columns, data.row_counts[:9], params, post, ll, stats,
                                backend=backend)
    with pytest.raises(ValueError, match="post"):
        _pass.column_fused_pass(columns, data.row_counts, params, post[:9], ll, stats,
                                backend=backend)
    with pytest.raises(ValueError, match="features"):
        _pass.column_fused_pass(data, data.row_counts, params, post, ll, stats,
                                backend=backend)
    with pytest.raises(ValueError, match="transpose"):
        _memory.InMemorySource(data, columns=data)
    if backend == "cython" and _kernels is not None:
        with pytest.raises(ValueError, match="workspace"):
            _kernels.column_fused_pass(
                columns.data, columns.indices, columns.indptr, data.row_counts,
                params.means, params.variances, np.log(params.weights), post, ll,
                *stats.arrays(), 1, np.empty(3))


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_fit_on_a_source_read_by_columns_equals_the_fit(backend, covariance_type):
    data, _ = _random_problem(5, 60, 400, 4, 0.7)
    settings = dict(n_components=4, covariance_type=covariance_type, random_state=0,
                    init_params="random_from_data", backend=backend, tol=1e-10)
    by_rows = fastem.GaussianMixture(**settings).fit(data)
    source = _memory.InMemorySource(data, backend=backend, columns=_transpose(data))
    _assert_same_fit(fastem.GaussianMixture(**settings).fit(source), by_rows)
    # Predictions on the source take the column pass's E-step.
    assert_allclose(by_rows.predict_proba(source), by_rows.predict_proba(data), rtol=1e-10,
                    atol=1e-300)
    assert_allclose(by_rows.score(source), by_rows.score(data), rtol=1e-12)
