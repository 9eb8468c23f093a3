"""fastem.course against the MIT 6.86x reference figures and the course's algorithms.

Three kinds of checks:

* every array and number printed in test_solutions.txt, and the netflix figures of
  docs/model.md, section 7;
* ``naive_em`` and ``kmeans`` against straightforward NumPy versions of the
  course's own code, on toy_data.txt;
* ``em`` against a dense, masked, log-domain version of docs/model.md, sections 1-3 on small
  random matrices.
"""

import json
import re
import subprocess
import sys
import textwrap
from decimal import Decimal

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import logsumexp

from fastem import course
from fastem.course import GaussianMixture

# ---------------------------------------------------------------------------
# test_solutions.txt
# ---------------------------------------------------------------------------

# numpy prints arrays with 8 fractional digits (its default precision), in
# fixed or scientific notation; scalars in these files are printed with repr.
PRINT_PRECISION = 8
SECTION_NAMES = {
    "Input": "input",
    "After first E-step": "estep",
    "After first M-step": "mstep",
    "After a run": "run",
}
_KEY = re.compile(r"^([A-Za-z_]+):(.*)$")


class Printed:
    """A value parsed from a printout, with the rounding of its printed digits."""

    def __init__(self, text):
        self.text = text.strip()
        self.is_array = self.text.startswith("[")
        if self.is_array:
            rows = re.findall(r"\[([^\[\]]*)\]", self.text)
            if not rows:
                raise ValueError(f"cannot parse array from {self.text!r}")
            tokens = [row.split() for row in rows]
            if len({len(row) for row in tokens}) != 1:
                raise ValueError(f"ragged array in {self.text!r}")
            self.value = np.array([[float(t) for t in row] for row in tokens])
            if not self.text.startswith("[["):
                self.value = self.value[0]
            # Half a unit of the last printed digit: 0.5e-8 in fixed notation,
            # 0.5e-8 * 10**exponent in scientific notation.
            half_units = [
                0.5 * 10.0 ** (-PRINT_PRECISION)
                * (10.0 ** Decimal(t).adjusted() if "e" in t.lower() else 1.0)
                for row in tokens for t in row
            ]
            self.rounding = max(half_units)
        else:
            self.value = float(self.text)
            self.rounding = 0.0  # repr: every digit printed

    def __repr__(self):
        return f"Printed({self.text!r})"


def parse_solutions(text):
    """``{section: {key: Printed}}`` from the course's test_solutions.txt."""
    sections = {}
    current_section = None
    current_key = None
    pieces = {}

    def flush():
        if current_key is not None:
            sections[current_section][current_key] = Printed(" ".join(pieces[current_key]))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        header = next(
            (name for title, name in SECTION_NAMES.items()
             if line.rstrip(":") == title),
            None,
        )
        if header is not None:
            flush()
            current_section, current_key = header, None
            sections[current_section] = {}
            pieces = {}
            continue
        match = _KEY.match(line)
        if match:
            flush()
            if current_section is None:
                raise ValueError(f"key before any section: {line!r}")
            current_key = match.group(1)
            if current_key in sections[current_section]:
                raise ValueError(f"{current_key} twice in section {current_section}")
            pieces[current_key] = [match.group(2)]
        elif current_key is not None:
            pieces[current_key].append(line)
        else:
            raise ValueError(f"unexpected line {line!r}")
    flush()
    return sections


def test_parser_reads_numpy_printouts():
    # The parser itself: fixed and scientific notation, 1-D and 2-D, repr scalars.
    parsed = parse_solutions(textwrap.dedent("""\
        Input:
        A:
        [[1.5 2. ]
         [3.  4.25]]
        B: [0.1 0.25]
        After a run
        C:
        [[1.00000000e+00 2.5e-14]]
        D:-3.5
        """))
    assert set(parsed) == {"input", "run"}
    assert_array_equal(parsed["input"]["A"].value, [[1.5, 2.0], [3.0, 4.25]])
    assert_array_equal(parsed["input"]["B"].value, [0.1, 0.25])
    assert parsed["input"]["B"].rounding == pytest.approx(5e-9)
    assert_array_equal(parsed["run"]["C"].value, [[1.0, 2.5e-14]])
    assert parsed["run"]["C"].rounding == pytest.approx(5e-9)
    assert parsed["run"]["D"].value == -3.5 and parsed["run"]["D"].rounding == 0.0


@pytest.fixture(scope="module")
def solutions(course_data_dir):
    path = course_data_dir / "test_solutions.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    parsed = parse_solutions(path.read_text())
    expected_keys = {
        "input": {"X", "K", "Mu", "Var", "P"},
        "estep": {"post", "LL"},
        "mstep": {"Mu", "Var", "P"},
        "run": {"Mu", "Var", "P", "post", "LL", "X_gold", "X_pred", "RMSE"},
    }
    assert {s: set(keys) for s, keys in parsed.items()} == expected_keys
    return parsed


# Arrays: rtol 1e-7 plus half a unit of the last printed digit as atol (5e-9
# in fixed notation; in scientific notation at most 5e-10 here), because the
# file shows only 8 fractional digits. Scalars are printed in full (repr),
# so they are held to 1e-10.
ARRAY_RTOL = 1e-7
SCALAR_RTOL = 1e-10


def check_printed(actual, printed, rtol=None):
    if printed.is_array:
        rtol = ARRAY_RTOL if rtol is None else rtol
        assert np.shape(actual) == printed.value.shape
        assert_allclose(actual, printed.value, rtol=rtol, atol=printed.rounding)
    else:
        rtol = SCALAR_RTOL if rtol is None else rtol
        assert_allclose(actual, printed.value, rtol=rtol, atol=0)


@pytest.fixture(scope="module")
def small(load_course_file):
    X = load_course_file("test_incomplete.txt")
    X_gold = load_course_file("test_complete.txt")
    return X, X_gold


def test_solutions_input_matches_data_file(solutions, small):
    X, _ = small
    assert_array_equal(solutions["input"]["X"].value, X)
    assert solutions["input"]["K"].value == 4


def test_init(solutions, small):
    X, _ = small
    mixture, post = course.init(X, 4, 0)
    given = solutions["input"]
    check_printed(mixture.mu, given["Mu"])
    check_printed(mixture.var, given["Var"])
    check_printed(mixture.p, given["P"])
    assert_array_equal(post, np.full((20, 4), 0.25))


def test_first_estep(solutions, small):
    X, _ = small
    mixture, _ = course.init(X, 4, 0)
    post, ll = course.estep(X, mixture)
    check_printed(post, solutions["estep"]["post"])
    check_printed(ll, solutions["estep"]["LL"])


def test_first_mstep(solutions, small):
    X, _ = small
    mixture, _ = course.init(X, 4, 0)
    post, _ = course.estep(X, mixture)
    new = course.mstep(X, post, mixture)
    check_printed(new.mu, solutions["mstep"]["Mu"])
    check_printed(new.var, solutions["mstep"]["Var"])
    check_printed(new.p, solutions["mstep"]["P"])


def test_run_fill_rmse(solutions, small):
    X, X_gold = small
    mixture, post = course.init(X, 4, 0)
    mixture, post, ll = course.run(X, mixture, post)
    expected = solutions["run"]
    check_printed(mixture.mu, expected["Mu"])
    check_printed(mixture.var, expected["Var"])
    check_printed(mixture.p, expected["P"])
    check_printed(post, expected["post"])
    check_printed(ll, expected["LL"])
    assert_allclose(ll, -84.98451993042474, rtol=SCALAR_RTOL)  # docs/model.md, section 7

    assert_array_equal(expected["X_gold"].value, X_gold)
    X_pred = course.fill_matrix(X, mixture)
    check_printed(X_pred, expected["X_pred"])
    assert_array_equal(X_pred[X != 0], X[X != 0])  # observed entries kept
    check_printed(course.rmse(X_gold, X_pred), expected["RMSE"])
    assert_allclose(course.rmse(X_gold, X_pred), 0.3152301205749675, rtol=SCALAR_RTOL)


def test_fill_matrix_does_not_modify_input(small):
    X, _ = small
    before = X.copy()
    mixture, _ = course.init(X, 4, 0)
    course.fill_matrix(X, mixture)
    assert_array_equal(X, before)


# ---------------------------------------------------------------------------
# netflix (docs/model.md, section 7)
# ---------------------------------------------------------------------------

NETFLIX_LL = {
    (1, 0): -1521060.9539852, (1, 1): -1521060.9539852, (1, 2): -1521060.9539852,
    (1, 3): -1521060.9539852, (1, 4): -1521060.9539852,
    (12, 0): -1399803.0466569, (12, 1): -1390234.4223469, (12, 2): -1416862.4011513,
    (12, 3): -1393521.3929898, (12, 4): -1416733.8083764,
}


@pytest.fixture(scope="module")
def netflix(load_course_file):
    return load_course_file("netflix_incomplete.txt")


@pytest.fixture(scope="module")
def netflix_runs(netflix):
    """``get(K, seed)``: (mixture, post, LL) of course.run, each run done once."""
    cache = {}

    def get(K, seed):
        if (K, seed) not in cache:
            mixture, post = course.init(netflix, K, seed)
            cache[K, seed] = course.run(netflix, mixture, post)
        return cache[K, seed]

    return get


def test_netflix_shape(netflix):
    assert netflix.shape == (1200, 1200)
    assert (netflix == 0).sum() == 328232


@pytest.mark.parametrize("K, seed", sorted(NETFLIX_LL))
def test_netflix_log_likelihood(netflix_runs, K, seed):
    _, _, ll = netflix_runs(K, seed)
    # The table shows 7 decimals of numbers near 1.4e6: about 1e-13 relative.
    assert_allclose(ll, NETFLIX_LL[K, seed], rtol=1e-9)


def test_netflix_best_k12_fill_rmse(netflix, netflix_runs, load_course_file):
    lls = {seed: netflix_runs(12, seed)[2] for seed in range(5)}
    assert max(lls, key=lls.get) == 1
    mixture, _, _ = netflix_runs(12, 1)
    gold = load_course_file("netflix_complete.txt")
    X_pred = course.fill_matrix(netflix, mixture)
    assert_array_equal(X_pred[netflix != 0], netflix[netflix != 0])
    assert_allclose(course.rmse(X_pred, gold), 0.4804908505400684, rtol=1e-10)


@pytest.mark.parametrize("K, seed, expected", [(1, 0, -1525318.545), (12, 1, -1441364.511)])
def test_netflix_bic(netflix, netflix_runs, K, seed, expected):
    mixture, _, ll = netflix_runs(K, seed)
    # docs/model.md prints the BIC with 3 decimals.
    assert_allclose(course.bic(netflix, mixture, ll), expected, rtol=0, atol=1e-3)


# ---------------------------------------------------------------------------
# The course's own algorithms, written plainly
# ---------------------------------------------------------------------------


def _gaussian(X, mean, var):
    """Density of N(mean, var * I) at each row of complete data X."""
    d = X.shape[1]
    log_prob = -d / 2.0 * np.log(2 * np.pi * var) - 0.5 * ((X - mean) ** 2).sum(axis=1) / var
    return np.exp(log_prob)


def ref_naive_estep(X, mixture):
    n, _ = X.shape
    K = mixture.mu.shape[0]
    post = np.zeros((n, K))
    for j in range(K):
        post[:, j] = mixture.p[j] * _gaussian(X, mixture.mu[j], mixture.var[j])
    totals = post.sum(axis=1)
    post /= totals[:, None]
    return post, np.log(totals).sum()


def ref_naive_mstep(X, post):
    n, d = X.shape
    K = post.shape[1]
    n_hat = post.sum(axis=0)
    mu = np.zeros((K, d))
    var = np.zeros(K)
    for j in range(K):
        mu[j] = post[:, j] @ X / n_hat[j]
        sse = ((mu[j] - X) ** 2).sum(axis=1) @ post[:, j]
        var[j] = sse / (d * n_hat[j])
    return GaussianMixture(mu, var, n_hat / n)


def ref_naive_run(X, mixture):
    prev_ll = ll = None
    while prev_ll is None or ll - prev_ll > 1e-6 * np.abs(ll):
        prev_ll = ll
        post, ll = ref_naive_estep(X, mixture)
        mixture = ref_naive_mstep(X, post)
    return mixture, post, ll


def ref_kmeans_estep(X, mixture):
    n = X.shape[0]
    K = mixture.mu.shape[0]
    post = np.zeros((n, K))
    for i in range(n):
        sse = ((np.tile(X[i], (K, 1)) - mixture.mu) ** 2).sum(axis=1)
        post[i, np.argmin(sse)] = 1
    return post


def ref_kmeans_mstep(X, post):
    n, d = X.shape
    K = post.shape[1]
    n_hat = post.sum(axis=0)
    mu = np.zeros((K, d))
    var = np.zeros(K)
    cost = 0.0
    for j in range(K):
        mu[j] = post[:, j] @ X / n_hat[j]
        sse = ((mu[j] - X) ** 2).sum(axis=1) @ post[:, j]
        cost += sse
        var[j] = sse / (d * n_hat[j])
    return GaussianMixture(mu, var, n_hat / n), cost


def ref_kmeans_run(X, mixture):
    prev_cost = cost = None
    while prev_cost is None or prev_cost - cost > 1e-4:
        prev_cost = cost
        post = ref_kmeans_estep(X, mixture)
        mixture, cost = ref_kmeans_mstep(X, post)
    return mixture, post, cost


def ref_em_estep(X, mixture):
    """docs/model.md, section 1, dense with a mask (0 = missing), in the log domain."""
    observed = X != 0
    n = X.shape[0]
    K = mixture.mu.shape[0]
    f = np.empty((n, K))
    for j in range(K):
        sq = np.where(observed, (X - mixture.mu[j]) ** 2, 0.0).sum(axis=1)
        f[:, j] = (np.log(mixture.p[j] + 1e-16)
                   - observed.sum(axis=1) / 2.0 * np.log(2 * np.pi * mixture.var[j])
                   - sq / (2 * mixture.var[j]))
    row_ll = logsumexp(f, axis=1)
    return np.exp(f - row_ll[:, None]), row_ll.sum()


def ref_em_mstep(X, post, mixture, min_variance=0.25):
    """docs/model.md, section 2: means only where N >= 1, variances with the new means."""
    observed = (X != 0).astype(float)
    n = X.shape[0]
    K = post.shape[1]
    N = post.T @ observed
    S1 = post.T @ (X * observed)
    mu = np.array(mixture.mu, dtype=float)
    update = N >= 1
    mu[update] = S1[update] / N[update]
    var = np.empty(K)
    for j in range(K):
        sq = (((X - mu[j]) ** 2) * observed).sum(axis=1)
        var[j] = max((post[:, j] * sq).sum() / (post[:, j] * observed.sum(axis=1)).sum(),
                     min_variance)
    return GaussianMixture(mu, var, post.sum(axis=0) / n)


def ref_em_run(X, mixture):
    prev_ll = ll = None
    while prev_ll is None or ll - prev_ll > 1e-6 * np.abs(ll):
        prev_ll = ll
        post, ll = ref_em_estep(X, mixture)
        mixture = ref_em_mstep(X, post, mixture)
    return mixture, post, ll


# Two implementations of the same arithmetic in a different order agree to a
# few ulps; 1e-10 leaves room for the iterations of a run. atol covers
# posteriors that are ~0 (their relative error is that of exp's argument).
RTOL = 1e-10
POST_ATOL = 1e-14


def assert_mixture_close(actual, expected, rtol=RTOL, atol=0.0):
    assert_allclose(actual.mu, expected.mu, rtol=rtol, atol=atol)
    assert_allclose(actual.var, expected.var, rtol=rtol, atol=atol)
    assert_allclose(actual.p, expected.p, rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def toy(load_course_file):
    X = load_course_file("toy_data.txt")
    assert X.shape == (250, 2)
    return X


TOY_CASES = [(K, seed) for K in (1, 2, 3, 4) for seed in range(5)]


@pytest.mark.parametrize("K, seed", TOY_CASES)
def test_naive_em_matches_course_algorithm(toy, K, seed):
    mixture, post0 = course.init(toy, K, seed)

    post, ll = course.naive_em.estep(toy, mixture)
    ref_post, ref_ll = ref_naive_estep(toy, mixture)
    assert_allclose(post, ref_post, rtol=RTOL, atol=POST_ATOL)
    assert_allclose(ll, ref_ll, rtol=RTOL)

    assert_mixture_close(course.naive_em.mstep(toy, ref_post), ref_naive_mstep(toy, ref_post))

    got_mixture, got_post, got_ll = course.naive_em.run(toy, mixture, post0)
    ref_mixture, ref_post, ref_ll = ref_naive_run(toy, mixture)
    assert_mixture_close(got_mixture, ref_mixture)
    assert_allclose(got_post, ref_post, rtol=RTOL, atol=POST_ATOL)
    assert_allclose(got_ll, ref_ll, rtol=RTOL)


@pytest.mark.parametrize("K, seed", TOY_CASES)
def test_kmeans_matches_course_algorithm(toy, K, seed):
    mixture, post0 = course.init(toy, K, seed)

    post = course.kmeans.estep(toy, mixture)
    ref_post = ref_kmeans_estep(toy, mixture)
    assert_array_equal(post, ref_post)

    got_mixture, got_cost = course.kmeans.mstep(toy, ref_post)
    ref_mixture, ref_cost = ref_kmeans_mstep(toy, ref_post)
    assert_mixture_close(got_mixture, ref_mixture)
    assert_allclose(got_cost, ref_cost, rtol=RTOL)

    got_mixture, got_post, got_cost = course.kmeans.run(toy, mixture, post0)
    ref_mixture, ref_post, ref_cost = ref_kmeans_run(toy, mixture)
    assert_array_equal(got_post, ref_post)
    assert_mixture_close(got_mixture, ref_mixture)
    assert_allclose(got_cost, ref_cost, rtol=RTOL)


def random_ratings(seed, n=30, d=7, missing=0.35):
    """Ratings 1..5 with zeros for missing, an empty row and an unseen column."""
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 6, size=(n, d)).astype(float)
    X[rng.random((n, d)) < missing] = 0.0
    X[3] = 0.0
    X[:, d - 1] = 0.0
    return X


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("K", [1, 3, 5])
def test_em_matches_reference(K, seed):
    X = random_ratings(seed)
    mixture, post0 = course.init(X, K, seed)

    post, ll = course.estep(X, mixture)
    ref_post, ref_ll = ref_em_estep(X, mixture)
    assert_allclose(post, ref_post, rtol=RTOL, atol=POST_ATOL)
    assert_allclose(ll, ref_ll, rtol=RTOL)
    # A row with nothing observed gets the prior as its posterior.
    assert_allclose(post[3], mixture.p, rtol=RTOL)

    assert_mixture_close(course.mstep(X, ref_post, mixture), ref_em_mstep(X, ref_post, mixture))
    assert_mixture_close(course.mstep(X, ref_post, mixture, min_variance=0.01),
                         ref_em_mstep(X, ref_post, mixture, min_variance=0.01))

    got_mixture, got_post, got_ll = course.run(X, mixture, post0)
    ref_mixture, ref_post, ref_ll = ref_em_run(X, mixture)
    assert_mixture_close(got_mixture, ref_mixture)
    assert_allclose(got_post, ref_post, rtol=RTOL, atol=POST_ATOL)
    assert_allclose(got_ll, ref_ll, rtol=RTOL)
    # The never-observed column keeps its initial means (N < 1 there).
    assert_array_equal(got_mixture.mu[:, -1], mixture.mu[:, -1])

    # fill runs a fresh E-step with the given mixture (not the run's last post).
    X_pred = course.fill_matrix(X, got_mixture)
    fill_post, _ = ref_em_estep(X, ref_mixture)
    expected = np.where(X != 0, X, fill_post @ ref_mixture.mu)
    assert_allclose(X_pred, expected, rtol=RTOL)


def test_em_mstep_does_not_modify_mixture():
    X = random_ratings(0)
    mixture, _ = course.init(X, 3, 0)
    saved = [a.copy() for a in mixture]
    post, _ = course.estep(X, mixture)
    course.mstep(X, post, mixture)
    for before, after in zip(saved, mixture):
        assert_array_equal(before, after)


def test_init_uses_legacy_global_random_state():
    X = random_ratings(1)
    np.random.seed(5)
    rows = np.random.choice(X.shape[0], 3, replace=False)
    mixture, post = course.init(X, 3, 5)
    assert_array_equal(mixture.mu, X[rows])
    expected_var = [((X - X[r]) ** 2).mean() for r in rows]
    assert_allclose(mixture.var, expected_var, rtol=1e-15)
    assert_array_equal(mixture.p, np.full(3, 1 / 3))
    assert_array_equal(post, np.full((X.shape[0], 3), 1 / 3))


def test_bic_formula():
    X = random_ratings(2)
    mixture, _ = course.init(X, 3, 0)
    n, d = X.shape
    free = 3 * d + 3 + 2
    assert_allclose(course.bic(X, mixture, -100.0), -100.0 - free / 2 * np.log(n), rtol=1e-15)


# ---------------------------------------------------------------------------
# A script written for the course's modules runs unchanged
# ---------------------------------------------------------------------------

COURSE_SCRIPT = textwrap.dedent("""\
    import json
    import sys

    import numpy as np

    from fastem.course import common, em, kmeans, naive_em

    folder = sys.argv[1]
    out = {}

    X = np.loadtxt(folder + "/toy_data.txt")
    for K in [1, 2, 3, 4]:
        mixture, post = common.init(X, K, 0)
        mixture, post, cost = kmeans.run(X, mixture, post)
        out[f"kmeans{K}"] = cost
        mixture, post = common.init(X, K, 0)
        mixture, post, ll = naive_em.run(X, mixture, post)
        out[f"naive{K}"] = [ll, common.bic(X, mixture, ll)]

    X = np.loadtxt(folder + "/test_incomplete.txt")
    X_gold = np.loadtxt(folder + "/test_complete.txt")
    mixture, post = common.init(X, 4, 0)
    mixture, post, ll = em.run(X, mixture, post)
    X_pred = em.fill_matrix(X, mixture)
    out["em"] = [ll, common.rmse(X_gold, X_pred), common.bic(X, mixture, ll)]
    print(json.dumps({k: np.asarray(v).tolist() for k, v in out.items()}))
    """)


def test_course_script_runs_unchanged(course_data_dir, toy, tmp_path):
    script = tmp_path / "main.py"
    script.write_text(COURSE_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(course_data_dir)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])

    ll, rmse, bic = out["em"]
    assert_allclose(ll, -84.98451993042474, rtol=SCALAR_RTOL)
    assert_allclose(rmse, 0.3152301205749675, rtol=SCALAR_RTOL)
    free = 4 * 5 + 4 + 3
    assert_allclose(bic, ll - free / 2 * np.log(20), rtol=1e-14)

    for K in (1, 2, 3, 4):
        mixture, _ = course.init(toy, K, 0)
        assert_allclose(out[f"kmeans{K}"], ref_kmeans_run(toy, mixture)[2], rtol=RTOL)
        ref_ll = ref_naive_run(toy, mixture)[2]
        assert_allclose(out[f"naive{K}"][0], ref_ll, rtol=RTOL)
        free = K * 2 + K + (K - 1)
        assert_allclose(out[f"naive{K}"][1], ref_ll - free / 2 * np.log(250), rtol=RTOL)
