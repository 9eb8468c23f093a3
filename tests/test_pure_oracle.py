"""The kernels against a deliberately plain dense oracle of docs/model.md, sections 1, 2 and 4.

The oracle works on a dense matrix with a boolean mask, one component at a
time, with no algebraic shortcut: distances are sums of squared differences,
the M-step's variances take a second pass over the data with the new means.

Tolerances: rtol 1e-10 everywhere. Where a quantity can be near zero through
cancellation, an absolute term of 1e-12 times the size of the terms that make
it up is allowed as well (the rounding of any correct summation order is
relative to those terms, not to their possibly tiny sum). This is written as
``assert_allclose(actual / scale, desired / scale, rtol=1e-10, atol=1e-12)``,
i.e. |actual - desired| <= 1e-12 * scale + 1e-10 * |desired|.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp

from fastem import as_observed
from fastem._em import mstep
from fastem._memory import run_em
from fastem._pass import SufficientStats, estep, fused_pass
from fastem._validation import Params

WEIGHT_FLOOR = 1e-16
RTOL = 1e-10
ATOL = 1e-12
# Posteriors are checked relatively down to the smallest normal doubles;
# below that (subnormals) only the absolute error is meaningful.
POST_ATOL = 1e-300
# Decisions taken on a threshold (N >= 1, argmin, the stopping rule) are not
# compared when the quantity lies within this relative margin of it: rounding
# may legitimately decide either way.
AMBIGUOUS = 1e-9

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------------------
# Problems
# ---------------------------------------------------------------------------


class Problem:
    """A partially observed matrix and mixture parameters."""

    def __init__(self, X, mask, params, float32, recipe=""):
        self.recipe = recipe
        self.X_nan = np.where(mask, X, np.nan)
        if float32:
            self.X_nan = self.X_nan.astype(np.float32)
        # The oracle sees exactly the values the kernels see.
        self.X = np.where(mask, self.X_nan, 0.0).astype(np.float64)
        self.mask = mask
        self.params = params
        self.data = as_observed(self.X_nan, missing_values=np.nan)

    def __repr__(self):
        n, d = self.X.shape
        return (f"Problem(n={n}, d={d}, K={self.params.means.shape[0]}, "
                f"observed={int(self.mask.sum())}, dtype={self.X_nan.dtype}, {self.recipe})")


@st.composite
def problems(draw, max_n=40, max_d=12, max_k=6):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    K = draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    missing = draw(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]) | st.floats(0.0, 1.0))
    kind = draw(st.sampled_from(["ratings", "normal"]))
    offset = draw(st.sampled_from([0.0, -30.0, 100.0, 1e4]))
    empty_row = draw(st.booleans())
    unseen_column = draw(st.booleans())
    zero_weight = draw(st.booleans()) and K > 1
    float32 = draw(st.booleans())

    rng = np.random.default_rng(seed)
    if kind == "ratings":
        X = rng.uniform(1.0, 5.0, size=(n, d))
        means = rng.uniform(0.0, 6.0, size=(K, d))
    else:
        X = offset + rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0)
        means = offset + rng.normal(size=(K, d)) * 2.0
    mask = rng.random((n, d)) >= missing
    if empty_row:
        mask[rng.integers(n)] = False
    if unseen_column:
        mask[:, rng.integers(d)] = False
    variances = rng.uniform(0.3, 5.0, size=K)
    weights = rng.dirichlet(np.ones(K))
    if zero_weight:
        # Allowed: the component scores use log(p + 1e-16), which stays finite.
        weights[rng.integers(K)] = 0.0
        weights /= weights.sum()
    recipe = (f"seed={seed}, missing={missing!r}, kind={kind}, offset={offset}, "
              f"empty_row={empty_row}, unseen_column={unseen_column}, "
              f"zero_weight={zero_weight}")
    return Problem(X, mask, Params(means, variances, weights), float32, recipe)


# ---------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------


def oracle_estep(X, mask, params):
    """post, per-row log-likelihood, squared distances a[u, j] and scores f[u, j]."""
    n = X.shape[0]
    K = params.means.shape[0]
    counts = mask.sum(axis=1)
    a = np.zeros((n, K))
    f = np.zeros((n, K))
    for j in range(K):
        diff = np.where(mask, X - params.means[j], 0.0)
        a[:, j] = (diff**2).sum(axis=1)
        f[:, j] = (np.log(params.weights[j] + WEIGHT_FLOOR)
                   - counts / 2.0 * np.log(2.0 * np.pi * params.variances[j])
                   - a[:, j] / (2.0 * params.variances[j]))
    row_ll = logsumexp(f, axis=1)
    post = np.exp(f - row_ll[:, None])
    return post, row_ll, a, f


def oracle_hard_post(a, mask):
    """One-hot at the nearest mean; rows with a near tie are reported."""
    n, K = a.shape
    nearest = a.argmin(axis=1)
    post = np.zeros((n, K))
    post[np.arange(n), nearest] = 1.0
    ambiguous = False
    if K > 1:
        ordered = np.sort(a, axis=1)
        gap = ordered[:, 1] - ordered[:, 0]
        observed_rows = mask.any(axis=1)  # an empty row ties exactly: first index
        ambiguous = bool((observed_rows & (gap <= AMBIGUOUS * (1.0 + ordered[:, 1]))).any())
    return post, ambiguous


def oracle_stats(X, mask, post, a):
    """docs/model.md, section 4, literally."""
    maskf = mask.astype(float)
    return {
        "resp_sum": post.sum(axis=0),
        "resp_x_sum": post.T @ (X * maskf),
        "resp_obs_sum": post.T @ maskf,
        "resp_sq_sum": (post * a).sum(axis=0),
    }


def oracle_mstep(X, mask, post, old, min_variance=0.25, mean_threshold=1.0):
    """docs/model.md, section 2, with a second pass over the data using the new means.

    Returns the new Params, the squared errors to the new means, and whether a
    threshold decision was too close to call.
    """
    n = X.shape[0]
    K = post.shape[1]
    maskf = mask.astype(float)
    N = post.T @ maskf
    S1 = post.T @ (X * maskf)
    update = (N >= mean_threshold) & (N > 0)
    # N near the threshold is a tie unless it is exact in any implementation:
    # with one component every posterior is exactly 1, and a column no row
    # observes has N = 0. (A posterior printed as 1.0 may be 1 - 2**-53
    # elsewhere: a row alone in observing a column puts N right at 1.)
    exact = (K == 1) | (maskf.sum(axis=0) == 0)[None, :]
    near = np.abs(N - mean_threshold) <= AMBIGUOUS * max(1.0, mean_threshold)
    ambiguous = bool((near & ~exact).any())
    means = old.means.copy()
    means[update] = S1[update] / N[update]
    variances = old.variances.copy()
    sq_error = np.zeros(K)
    for j in range(K):
        sq_rows = (np.where(mask, X - means[j], 0.0) ** 2).sum(axis=1)
        sq_error[j] = (post[:, j] * sq_rows).sum()
        denominator = (post[:, j] * mask.sum(axis=1)).sum()
        if denominator > 0:
            variances[j] = sq_error[j] / denominator
        # a component that saw no observed entry keeps its old variance
        ambiguous |= 0 < denominator < 1e-200
    variances = np.maximum(variances, min_variance)
    return Params(means, variances, post.sum(axis=0) / n), sq_error, ambiguous


# ---------------------------------------------------------------------------
# Scales of the terms behind each quantity (see the module docstring)
# ---------------------------------------------------------------------------


def assert_close_scaled(actual, desired, scale, err_msg=""):
    scale = np.maximum(np.asarray(scale, dtype=float), 1e-300)
    assert_allclose(np.asarray(actual) / scale, np.asarray(desired) / scale,
                    rtol=RTOL, atol=ATOL, err_msg=err_msg)


def row_scale(f):
    # log p(x_u) is a log-sum-exp of scores f[u, :]: its rounding follows |f|.
    return 1.0 + np.abs(f).max(axis=1)


def row_spread(X, mask, means):
    # The largest squared distance of each row to any mean.
    spread = np.zeros(X.shape[0])
    for mean in means:
        spread = np.maximum(spread, (np.where(mask, X - mean, 0.0) ** 2).sum(axis=1))
    return spread


def check_stats(stats, expected, post, problem):
    X, mask = problem.X, problem.mask
    maskf = mask.astype(float)
    assert_close_scaled(stats.resp_sum, expected["resp_sum"], post.sum(axis=0), "n_j")
    assert_close_scaled(stats.resp_obs_sum, expected["resp_obs_sum"], post.T @ maskf, "N")
    # S1 can cancel for data of both signs: scale by sum post * |x|.
    assert_close_scaled(stats.resp_x_sum, expected["resp_x_sum"],
                        post.T @ np.abs(X * maskf), "S1")
    spread = row_spread(X, mask, problem.params.means)
    assert_close_scaled(stats.resp_sq_sum, expected["resp_sq_sum"],
                        post.T @ spread, "R")


def recentring_scale(X, mask, post, a, old_means, new_means, sq_new):
    """Size of the terms of docs/model.md section 4's re-centred squared error, per component.

    R_j - 2 sum_i D (S1 - mu_old N) + sum_i D^2 N is exact, but S1 - mu_old N
    is a difference of sums of the raw data: its rounding is relative to
    |S1| + |mu_old| N, which is large for data far from 0 while D is not yet
    small. The other terms are bounded by the squared distances to the old
    and the new means.
    """
    maskf = mask.astype(float)
    N = post.T @ maskf
    S1_size = post.T @ np.abs(X * maskf)
    shift = np.abs(new_means - old_means)
    cross = (shift * (S1_size + np.abs(old_means) * N)).sum(axis=1)
    return (post * a).sum(axis=0) + sq_new + 2.0 * cross


def check_params(actual, expected, sq_scale, denominators, X):
    # A mean S1/N inherits the scale of the data.
    assert_close_scaled(actual.means, expected.means, 1.0 + np.abs(X).max(), "means")
    var_scale = sq_scale / np.where(denominators > 0, denominators, 1.0)
    assert_close_scaled(actual.variances, expected.variances, var_scale, "variances")
    assert_close_scaled(actual.weights, expected.weights, expected.weights, "weights")


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


@SETTINGS
@given(problem=problems())
def test_estep(backend, problem):
    post, row_ll = estep(problem.data, problem.params, backend=backend)
    ref_post, ref_ll, _, f = oracle_estep(problem.X, problem.mask, problem.params)
    assert_allclose(post, ref_post, rtol=RTOL, atol=POST_ATOL)
    assert_close_scaled(row_ll, ref_ll, row_scale(f), "row log-likelihood")
    assert_allclose(post.sum(axis=1), 1.0, rtol=1e-12)
    # A row with no observed entry has the prior as its posterior.
    empty = ~problem.mask.any(axis=1)
    prior = (problem.params.weights + WEIGHT_FLOOR) / (problem.params.weights + WEIGHT_FLOOR).sum()
    assert_allclose(post[empty], np.broadcast_to(prior, post[empty].shape), rtol=1e-12)


@SETTINGS
@given(problem=problems(), hard=st.booleans())
def test_fused_pass_statistics(backend, problem, hard):
    X, mask, params = problem.X, problem.mask, problem.params
    n, d = X.shape
    K = params.means.shape[0]
    ref_post, ref_ll, a, f = oracle_estep(X, mask, params)
    if hard:
        ref_post, ambiguous = oracle_hard_post(a, mask)
        assume(not ambiguous)

    post = np.full((n, K), np.nan)
    row_ll = np.full(n, np.nan)
    stats = SufficientStats(K, d)
    for array in stats.arrays():
        array.fill(np.nan)  # the pass must overwrite, not accumulate into, its outputs
    fused_pass(problem.data, params, post, row_ll, stats, hard=hard, backend=backend)

    if hard:
        assert_array_equal(post, ref_post)
    else:
        assert_allclose(post, ref_post, rtol=RTOL, atol=POST_ATOL)
    # In k-means mode the log-likelihood is still the mixture's.
    assert_close_scaled(row_ll, ref_ll, row_scale(f), "row log-likelihood")
    check_stats(stats, oracle_stats(X, mask, ref_post, a), ref_post, problem)


@SETTINGS
@given(problem=problems(),
       min_variance=st.sampled_from([0.25, 0.0, 1e-3, 2.0]),
       mean_threshold=st.sampled_from([1.0, 0.0, 0.5, 2.0]))
def test_mstep_from_fused_pass(backend, problem, min_variance, mean_threshold):
    X, mask, params = problem.X, problem.mask, problem.params
    n, d = X.shape
    K = params.means.shape[0]
    ref_post, _, a, _ = oracle_estep(X, mask, params)
    expected, sq_new, ambiguous = oracle_mstep(
        X, mask, ref_post, params, min_variance=min_variance, mean_threshold=mean_threshold)
    assume(not ambiguous)

    post = np.empty((n, K))
    row_ll = np.empty(n)
    stats = SufficientStats(K, d)
    fused_pass(problem.data, params, post, row_ll, stats, backend=backend)
    old_means = params.means.copy()
    got, sq_error = mstep(stats, params.means, params.variances, n,
                          min_variance=min_variance, mean_threshold=mean_threshold)

    sq_scale = recentring_scale(X, mask, ref_post, a, params.means, expected.means, sq_new)
    denominators = ref_post.T @ mask.sum(axis=1)
    check_params(got, expected, sq_scale, denominators, X)
    assert_close_scaled(sq_error, sq_new, sq_scale, "squared error")
    assert_array_equal(params.means, old_means)  # the old means are not modified
    assert (got.variances >= min_variance).all()


def oracle_run(problem, max_iter, tol=1e-6):
    """The course's loop, capped at max_iter; None when a decision is ambiguous."""
    X, mask, params = problem.X, problem.mask, problem.params
    previous = None
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        estep_params = params
        post, row_ll, a, _ = oracle_estep(X, mask, params)
        ll = math.fsum(row_ll)
        params, sq_new, ambiguous = oracle_mstep(X, mask, post, params)
        if ambiguous:
            return None
        n_iter += 1
        if previous is not None:
            margin = (ll - previous) - tol * abs(ll)
            if abs(margin) <= AMBIGUOUS * (1.0 + np.abs(row_ll).sum()):
                return None
            if margin <= 0:
                converged = True
                break
        previous = ll
    denominators = post.T @ mask.sum(axis=1)
    sq_scale = recentring_scale(X, mask, post, a, estep_params.means, params.means, sq_new)
    var_scale = sq_scale / np.where(denominators > 0, denominators, 1.0)
    # After an M-step the means carry rounding of a few ulps of the data,
    # which moves a score f(u, j) by up to sum_i |x_ui - mu_ji| * that / var_j.
    mean_rounding = 1e-15 * (1.0 + np.abs(X).max())
    score_shift = np.zeros(X.shape[0])
    for mean, var in zip(estep_params.means, estep_params.variances):
        distance = np.where(mask, np.abs(X - mean), 0.0).sum(axis=1)
        score_shift = np.maximum(score_shift, mean_rounding * distance / var)
    return {"params": params, "post": post, "ll": ll, "n_iter": n_iter,
            "converged": converged, "ll_scale": 1.0 + np.abs(row_ll).sum(),
            "var_scale": var_scale, "score_shift": score_shift}


@SETTINGS
@given(problem=problems(max_n=25, max_d=8, max_k=4), max_iter=st.integers(1, 4))
def test_run_em(backend, problem, max_iter):
    expected = oracle_run(problem, max_iter)
    assume(expected is not None)

    seen = []
    result = run_em(problem.data, problem.params, backend=backend, max_iter=max_iter,
                    callback=lambda it, ll: seen.append((it, ll)))
    assert result.n_iter == expected["n_iter"]
    assert result.converged == expected["converged"]
    assert [it for it, _ in seen] == list(range(1, expected["n_iter"] + 1))
    assert seen[-1][1] == result.log_likelihood
    # The scales of the terms as in the single-step tests, those of the last
    # iteration; earlier iterations' rounding is of the same order. The scores
    # of the last E-step may differ by the shift of rounded means (see
    # oracle_run), twice over in post = exp(f - logsumexp(f)).
    shift = expected["score_shift"]
    assert_allclose(result.log_likelihood, expected["ll"], rtol=RTOL,
                    atol=ATOL * expected["ll_scale"] + shift.sum())
    assert_allclose(result.post, expected["post"], rtol=RTOL + 2.0 * shift.max(),
                    atol=POST_ATOL)
    assert_close_scaled(result.params.means, expected["params"].means,
                        1.0 + np.abs(problem.X).max(), "means")
    assert_close_scaled(result.params.variances, expected["params"].variances,
                        expected["var_scale"], "variances")
    assert_allclose(result.params.weights, expected["params"].weights, rtol=RTOL)


@pytest.mark.parametrize("max_iter", [0, -1])
def test_run_em_rejects_max_iter_below_one(max_iter):
    # No iteration means no E-step and no log-likelihood to return.
    data = as_observed(np.array([[1.0, 2.0], [3.0, np.nan]]))
    params = Params(np.array([[1.0, 2.0]]), np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="max_iter"):
        run_em(data, params, max_iter=max_iter, backend="python")


def test_oracle_agrees_with_a_hand_computed_case():
    # The oracle itself, on 2 rows x 2 columns with one missing entry.
    X = np.array([[1.0, 0.0], [2.0, 4.0]])
    mask = np.array([[True, False], [True, True]])
    params = Params(np.array([[1.0, 3.0], [2.0, 2.0]]), np.array([1.0, 2.0]),
                    np.array([0.5, 0.5]))
    post, row_ll, a, _ = oracle_estep(X, mask, params)
    assert_array_equal(a, [[0.0, 1.0], [2.0, 4.0]])
    f00 = np.log(0.5 + 1e-16) - 0.5 * np.log(2 * np.pi)
    f01 = np.log(0.5 + 1e-16) - 0.5 * np.log(4 * np.pi) - 1.0 / 4.0
    assert_allclose(row_ll[0], np.logaddexp(f00, f01), rtol=1e-15)
    assert_allclose(post[0, 0], np.exp(f00 - np.logaddexp(f00, f01)), rtol=1e-15)

    new, sq_error, _ = oracle_mstep(X, mask, np.array([[1.0, 0.0], [0.0, 1.0]]), params)
    # Component 0 saw column 1 in no row (N = 0 < 1): its mean stays at 3.
    assert_array_equal(new.means, [[1.0, 3.0], [2.0, 4.0]])
    assert_array_equal(sq_error, [0.0, 0.0])
    assert_array_equal(new.variances, [0.25, 0.25])
    assert_array_equal(new.weights, [0.5, 0.5])


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_statistics_keep_precision_with_a_large_offset(backend, offset):
    # docs/model.md, section 4: the squared distances must not lose digits when the data
    # sit far from 0, as long as the means sit near the data.
    rng = np.random.default_rng(7)
    X = offset + rng.normal(size=(50, 6))
    X[rng.random(X.shape) < 0.3] = np.nan
    means = offset + rng.normal(size=(3, 6)) * 0.5
    params = Params(means, np.array([0.5, 1.0, 2.0]), np.array([0.2, 0.3, 0.5]))
    mask = ~np.isnan(X)
    X0 = np.where(mask, X, 0.0)
    data = as_observed(X, missing_values=np.nan)
    post = np.empty((50, 3))
    row_ll = np.empty(50)
    stats = SufficientStats(3, 6)
    fused_pass(data, params, post, row_ll, stats, backend=backend)
    ref_post, ref_ll, a, _ = oracle_estep(X0, mask, params)
    assert_allclose(stats.resp_sq_sum, (ref_post * a).sum(axis=0), rtol=1e-9)
    assert_allclose(post, ref_post, rtol=1e-9, atol=POST_ATOL)
    assert_allclose(row_ll, ref_ll, rtol=1e-9)
