"""Faults of production use, each in a process of its own with a timeout: a
regression fails instead of hanging the suite.

- fork after threaded work (GNU OpenMP's threads do not survive ``os.fork``):
  children fit, predict and fill on one thread; the parent keeps its threads;
- duplicate (row, column) entries: one rule everywhere, never a silent sum.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import fastem

TIMEOUT = 180  # seconds: far above what each case needs


def _run(code, backend):
    env = {**os.environ, "FASTEM_BACKEND": backend, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


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
