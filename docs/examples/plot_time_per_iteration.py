"""
Time per EM iteration against the number of ratings
===================================================

An EM iteration of :class:`fastem.GaussianMixture` is one pass over the
observed entries, whatever the size of the full matrix, so its cost should
grow linearly with the number of ratings. This example times iterations on
synthetic ratings from 100,000 to 3.2 million entries and plots the seconds
per iteration on log-log axes next to a line of slope 1. The figure is made
when the documentation is built, so its numbers are those of the machine
that built it, with the backend and threads printed below.
"""

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

import fastem
from fastem.datasets import make_ratings

# Which kernels run. Every fit below runs on one thread: by default a matrix
# gets one thread per 250,000 ratings, up to the cores, which would bend the
# curve where the thread count changes.
print(fastem.backend_info())

# %%
# Timing the iterations
# ---------------------
# ``tol=0`` makes EM run all ``max_iter`` iterations. ``fit`` calls its
# ``progress`` argument as the fit starts, and the callable that returns after
# each EM iteration: the time between two such calls is one iteration, without
# the conversion of the input or the initialisation. The median of 30
# iterations damps the noise of other work on the machine.
def seconds_per_iteration(X, n_iterations=31):
    stamps = []

    def progress(restart, n_restarts):
        return lambda iteration, log_likelihood: stamps.append(time.perf_counter())

    model = fastem.GaussianMixture(n_components=8, max_iter=n_iterations, tol=0,
                                   init_params="random_from_data", random_state=0,
                                   n_threads=1)
    with warnings.catch_warnings():
        # Stopping after a fixed number of iterations is the point here.
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        model.fit(X, progress=progress)
    return np.median(np.diff(stamps))


sizes = np.array([100_000, 200_000, 400_000, 800_000, 1_600_000, 3_200_000])
per_iteration = []
for n_ratings in sizes:
    # About 20 ratings per user, on 2,000 items.
    X = make_ratings(int(n_ratings) // 20, 2_000, int(n_ratings), random_state=0)
    per_iteration.append(seconds_per_iteration(X))
    print(f"{n_ratings:>9,} ratings: {per_iteration[-1] * 1e3:6.2f} ms per iteration "
          f"({per_iteration[-1] / n_ratings / 8 * 1e9:.2f} ns per rating and component)")
per_iteration = np.array(per_iteration)

# %%
# Seconds per iteration, log-log
# ------------------------------
# The reference line is ``c * n_ratings`` with ``c`` fitted to the points
# (geometric mean of seconds per rating): points along it mean linear cost.
c = np.exp(np.mean(np.log(per_iteration / sizes)))
fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
ax.loglog(sizes, per_iteration, "o-", label="measured (median of 30 iterations)")
ax.loglog(sizes, c * sizes, "--", color="grey", label="linear in the number of ratings")
ax.set(xlabel="number of observed ratings",
       ylabel="seconds per EM iteration (K = 8, 1 thread)",
       title="Time per EM iteration against the number of ratings")
ax.legend()
plt.show()
