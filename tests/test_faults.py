"""Faults of production use, each in a process of its own with a timeout: a
regression fails instead of hanging the suite.

- fork after threaded work (GNU OpenMP's threads do not survive ``os.fork``):
  children fit, predict and fill on one thread; the parent keeps its threads;
- duplicate (row, column) entries: one rule everywhere (a ValueError naming
  how many and the first pair), never a silent sum;
- Ctrl-C: a KeyboardInterrupt within seconds, exit status 130 and no file
  left by the command;
- memory limits: a MemoryError naming the size before a request that cannot
  fit, under a limit set with ``resource``.
"""

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import fastem

TIMEOUT = 180  # seconds: far above what each case needs
# Subprocesses run outside the source tree, so that they import the
# installed package, not the folder beside the tests.
OUTSIDE = tempfile.gettempdir()


def _run(code, backend):
    env = {**os.environ, "FASTEM_BACKEND": backend, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env,
                          cwd=OUTSIDE)


_SETUP = """
    import os, warnings
    import numpy as np
    import fastem
    from fastem.datasets import make_ratings
    warnings.simplefilter("ignore")
    X = make_ratings(20000, 300, 400_000, random_state=0).to_csr()
    def fit():
        return fastem.GaussianMixture(3, random_state=0, n_threads=2, max_iter=4).fit(X)
    parent = fit()   # threaded work before the fork
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_after_a_threaded_fit_fits_predicts_and_fills(backend):
    result = _run(_SETUP + """
    pid = os.fork()
    if pid == 0:
        model = fit()
        same = np.allclose(model.means_, parent.means_, rtol=1e-10)
        labels = model.predict(X[:50])
        filled = model.fill(X[:20])
        print("child", same, labels.shape[0], np.isfinite(filled).all(), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    from fastem import _backend
    # The parent keeps its threads.
    kernels = _backend.get_backend()
    print("parent", status, _backend.effective_n_threads(2, kernels))
    """, backend)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert "child True 50 True" in lines
    assert "parent 0 2" in lines


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_fork_pool_after_a_threaded_fit(backend):
    result = _run(_SETUP + """
    import multiprocessing
    def work(seed):
        model = fastem.GaussianMixture(3, random_state=seed, n_threads=2,
                                       max_iter=3).fit(X)
        return float(model.log_likelihood_)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        values = pool.map(work, [0, 1, 2])
    print("pool", len(values), all(np.isfinite(values)))
    print("refit", fit().n_iter_)
    """, backend)
    assert result.returncode == 0, result.stderr
    assert "pool 3 True" in result.stdout
    assert "refit 4" in result.stdout


# ---------------------------------------------------------------------------
# duplicates: one rule in every entry point
# ---------------------------------------------------------------------------

def _two_fours():
    """A pair rated 4 twice: never a rating of 8."""
    return np.array([0, 0, 1, 2]), np.array([1, 1, 0, 2]), np.array([4.0, 4.0, 3.0, 2.0])


@pytest.mark.parametrize("form", ["coo", "csr", "recommender"])
def test_repeated_pairs_in_memory_are_refused(form):
    rows, cols, values = _two_fours()
    if form == "recommender":
        with pytest.raises(ValueError, match="more than once, the first at user index 0, "
                                             "item index 1"):
            fastem.Recommender().fit_triples(rows, cols, values)
        return
    X = sp.coo_matrix((values, (rows, cols)), shape=(3, 3))
    if form == "csr":
        X = sp.csr_matrix((values, cols, np.array([0, 2, 3, 4])), shape=(3, 3))
    with pytest.raises(ValueError, match=r"1 repeated entry, the first at \(0, 1\)"):
        fastem.GaussianMixture(1).fit(X)


def test_repeated_pairs_on_the_command_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("1,10,4\n1,10,4\n2,10,3\n2,20,2\n3,20,5\n")
    command = [sys.executable, "-m", "fastem", "fit", str(path), "-o",
               str(tmp_path / "m.npz"), "-q"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                             cwd=tmp_path)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "the first at (1, 10)" in lines[0]
    assert "--duplicates last" in lines[0]
    assert not (tmp_path / "m.npz").exists()
    kept = subprocess.run(command + ["--duplicates", "last"], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "1 rating(s) repeat a (user, item) pair" in kept.stderr
    assert (tmp_path / "m.npz").exists()


def _need_dask():
    try:
        import dask.array  # noqa: F401
        import dask.dataframe  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI", "") == "true":
            pytest.fail(f"dask cannot be imported ({exc}) (CI=true: an error, not a skip)")
        pytest.skip(f"dask cannot be imported ({exc}); install fastem[dask]")


def test_repeated_pairs_in_dask_triples():
    _need_dask()
    import dask
    import dask.dataframe as dd
    import pandas as pd

    rows, cols, values = _two_fours()
    frame = dd.from_pandas(pd.DataFrame({"row": rows, "col": cols, "value": values}),
                           npartitions=1)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"\(row=0, col=1\) appears more than once "
                                             r"\(1 repeated triple"):
            fastem.GaussianMixture(1).fit(frame)


# ---------------------------------------------------------------------------
# interrupts: Ctrl-C (SIGINT) stops a long fit within about a second
# ---------------------------------------------------------------------------

# A fit that would run for minutes: the process says when its EM has begun.
_LONG_FIT = """
    import sys, warnings
    import fastem
    from fastem.datasets import make_ratings
    warnings.simplefilter("ignore")
    X = make_ratings(50000, 2000, 2_000_000, random_state=0).to_csr()
    def progress(restart, n_restarts):
        def iteration(i, log_likelihood):
            if i == 2:
                print("running", flush=True)
        return iteration
    SOURCE = X
"""


def _interrupt(command, env=None, cwd=None):
    """Start ``command``, send SIGINT once it prints 'running'; (process, seconds to exit)."""
    import signal
    import time

    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env, cwd=cwd or OUTSIDE)
    try:
        lines = []
        while not lines or lines[-1].strip() != "running":
            lines.append(process.stdout.readline())
            assert lines[-1], ("".join(lines), process.stderr.read())  # not at EOF
        start = time.perf_counter()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
        return process.returncode, err, time.perf_counter() - start
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a subprocess: POSIX")
@pytest.mark.parametrize("where", ["memory", "dask"])
def test_ctrl_c_stops_a_fit_with_keyboard_interrupt(backend, where):
    if where == "dask":
        _need_dask()
        source = "import dask, dask.array as da; dask.config.set(scheduler='threads'); " \
                 "SOURCE = da.from_array(X, chunks=(10000, -1), asarray=False)"
    else:
        source = ""
    code = textwrap.dedent(_LONG_FIT) + source + """
try:
    fastem.GaussianMixture(12, tol=0, max_iter=100000, random_state=0).fit(
        SOURCE, progress=progress)
except KeyboardInterrupt:
    print("KeyboardInterrupt", file=sys.stderr)
    sys.exit(3)
"""
    env = {**os.environ, "FASTEM_BACKEND": backend}
    status, err, seconds = _interrupt([sys.executable, "-c", code], env=env)
    assert status == 3, err
    assert "KeyboardInterrupt" in err
    assert seconds < 5, f"{seconds:.1f} s from SIGINT to exit"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a subprocess: POSIX")
def test_ctrl_c_on_the_command_line_leaves_no_file(tmp_path):
    from fastem.datasets import make_ratings

    data = make_ratings(50000, 2000, 2_000_000, random_state=0)
    sp.save_npz(tmp_path / "ratings.npz", data.to_csr())
    # The command itself, started by a wrapper that says 'running' once the
    # fit's EM is under way (its second iteration, of about a hundred).
    code = textwrap.dedent("""
        import sys
        import fastem.mixture
        from fastem.cli import main
        run_em = fastem.mixture.run_em
        def announcing(source, params, *, callback=None, **settings):
            def iteration(i, log_likelihood):
                if i == 2:
                    print("running", flush=True)
                if callback is not None:
                    callback(i, log_likelihood)
            return run_em(source, params, callback=iteration, **settings)
        fastem.mixture.run_em = announcing
        sys.exit(main(sys.argv[1:]))
    """)
    command = [sys.executable, "-c", code, "fit", str(tmp_path / "ratings.npz"),
               "--model", "mixture", "-k", "12", "--tol", "0", "--max-iter", "100000",
               "-o", str(tmp_path / "model.npz")]
    status, err, seconds = _interrupt(command, cwd=tmp_path)
    assert status == 130
    assert err.strip().splitlines()[-1] == "fastem: interrupted"
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ratings.npz"]
    assert seconds < 5, f"{seconds:.1f} s from SIGINT to exit"


# ---------------------------------------------------------------------------
# memory: requests that cannot fit are refused before they are made
# ---------------------------------------------------------------------------

_LIMITED = """
    import resource, sys, warnings
    import numpy as np
    import scipy.sparse as sp
    import fastem
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    def matrix(n_rows, n_cols, nnz):
        rows = np.sort(rng.integers(0, n_rows, nnz))
        cols = rng.integers(0, n_cols, nnz)
        X = sp.csr_matrix((rng.uniform(1, 5, nnz), (rows, cols)), shape=(n_rows, n_cols))
        return fastem.as_observed(sp.csr_matrix((np.ones(X.nnz), X.indices, X.indptr),
                                                shape=X.shape))
    small = matrix(2000, 50, 20000)
    wide = matrix(2000, 2_000_000, 20000)
    tall = matrix(3_000_000, 50, 3_000_000)
    with open("/proc/self/status") as f:
        size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    # 400 MB more than the process holds now.
    resource.setrlimit(resource.RLIMIT_AS, (size + (400 << 20), resource.RLIM_INFINITY))
    def attempt(name, X, k):
        try:
            model = fastem.GaussianMixture(k, random_state=0, max_iter=3,
                                           init_params="random_from_data").fit(X)
            print(name, "fitted", model.means_.shape)
        except MemoryError as exc:
            print(name, "MemoryError", exc)
    attempt("small", small, 3)      # fits within the limit
    attempt("wide", wide, 48)       # 48 x 2,000,000 column blocks: gigabytes
    attempt("tall", tall, 64)       # posteriors of 3,000,000 rows x 64: 1.5 GB
    attempt("small again", small, 3)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc")
def test_requests_beyond_a_memory_limit_raise_memory_error(backend):
    result = _run(_LIMITED, backend)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines()
                 if not line.startswith("small again"))
    assert lines["small"] == "fitted (3, 50)"
    for name in ("wide", "tall"):
        assert lines[name].startswith("MemoryError"), lines[name]
        assert "MB of memory is available" in lines[name]
        assert "n_components" in lines[name] and "n_threads" in lines[name]
    assert "small again fitted (3, 50)" in result.stdout
