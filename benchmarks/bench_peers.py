"""fastem against other implementations of the same model on the same complete data.

Method: each data set (``--shapes``, default 20,000 x 200 and 100,000 x 500)
is a mixture of K = 12 spherical Gaussians in d dimensions (unit noise,
centres N(0, 4.5 / d) per coordinate, so that neighbouring components
overlap and EM keeps improving for dozens of iterations), fully observed.
Every implementation starts from the same parameters (each mean the average
of 5 random rows, every variance the variance of X, equal weights) and runs a
fixed number of EM iterations with no stopping rule and no variance floor:

- ``fastem``: ``fastem._memory.run_em(as_observed(X, missing_values=None), params,
  tol=0, max_iter=n, min_variance=0, mean_threshold=0, n_threads=...)``,
  compiled kernels; the conversion to CSR is done once, untimed;
- ``fastem estimator``: ``fastem.GaussianMixture(12, tol=0, max_iter=n,
  min_variance=0, missing_values=None, *_init=...)`` fitted on the dense X,
  conversion included;
- ``scikit-learn``: ``sklearn.mixture.GaussianMixture(12,
  covariance_type='spherical', tol=0, reg_covar=1e-10, max_iter=n,
  weights_init, means_init, precisions_init=1/var)``, its BLAS limited to
  each thread count with threadpoolctl (scikit-learn is needed by this
  script only);
- ``fastem pure``: ``run_em`` on the pure NumPy/SciPy backend (serial);
- ``dense course EM``: ``estep_dense``/``mstep_dense`` of
  ``dense_course_em.py`` (plain vectorised NumPy), where X and its dense
  temporaries fit in the available memory.

fastem and scikit-learn run with each of ``--threads`` (default 1 and 2);
everything else with BLAS limited to 1 thread. Each configuration runs in
its own process (its own heap and peak memory): one warm-up fit of ``n0 = 1``
iteration, then up to ``--repeats`` pairs of fits of ``n0`` and ``n1``
iterations (``--iterations``; ``--slow-iterations`` for the last two), fewer
when the warm-up predicts more than ``--budget`` seconds. The time of an
iteration is ``(median T(n1) - median T(n0)) / (n1 - n0)``, which leaves out
what a fit does once (scikit-learn's input checks, its initial M-step and its
final E-step; fastem's buffers). The log-likelihood after the last common
iteration is compared with fastem's, to show that all compute the same
thing. Target: fastem at least 2x faster per iteration than scikit-learn,
compared at 2 threads each and best against best (on a machine shared with
other work, a second thread can slow a configuration down).

Example::

    PYTHONPATH=. python benchmarks/bench_peers.py --shapes 20000x200 100000x500
"""

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import (append_markdown, current_rss_mb, markdown_table, print_header,
                     process_peak_rss_mb, reset_peak_rss, run_child)

IMPLEMENTATIONS = ["fastem", "fastem-estimator", "sklearn", "fastem-pure", "dense-course"]
LABELS = {
    "fastem": "fastem run_em (compiled)",
    "fastem-estimator": "fastem GaussianMixture.fit on dense X",
    "sklearn": "scikit-learn GaussianMixture (spherical)",
    "fastem-pure": "fastem run_em (pure NumPy backend)",
    "dense-course": "dense course EM (NumPy)",
}
SLOW = ("fastem-pure", "dense-course")
TARGET_RATIO = 2.0
INIT_ROWS = 5  # rows averaged into each initial mean
SEPARATION = 3.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["20000x200", "100000x500"],
                        help="n_samples x n_features of the data sets (default: %(default)s)")
    parser.add_argument("--components", type=int, default=12)
    parser.add_argument("--implementations", nargs="+", choices=IMPLEMENTATIONS,
                        default=IMPLEMENTATIONS)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="threads of fastem and BLAS threads of scikit-learn; the "
                             "estimator runs with the last (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=10,
                        help="n1, iterations of the long fits (default: %(default)s)")
    parser.add_argument("--slow-iterations", type=int, default=3,
                        help="n1 of the pure backend and the dense course EM "
                             "(default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed pairs of fits at most (default: %(default)s)")
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds a configuration's timed pairs should take at most, "
                             "as the warm-up predicts; at least one pair runs "
                             "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result table and the command line to FILE")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.shapes = [tuple(int(x) for x in shape.lower().split("x")) for shape in args.shapes]
    return args


# ---------------------------------------------------------------------------
# Data and initial parameters, the same in every process.


def make_data(n, d, K, seed):
    """Complete (n, d) float64 data from K overlapping spherical Gaussians."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, SEPARATION / np.sqrt(2 * d), size=(K, d))
    labels = rng.integers(K, size=n)
    X = np.empty((n, d))
    for start in range(0, n, 8192):  # blocks: no full-size temporary
        stop = min(n, start + 8192)
        X[start:stop] = rng.standard_normal((stop - start, d))
        X[start:stop] += centres[labels[start:stop]]
    rows = rng.choice(n, (K, INIT_ROWS), replace=False)
    means = X[rows].mean(axis=1)
    variances = np.full(K, X.var())
    weights = np.full(K, 1.0 / K)
    return X, means, variances, weights


def dense_needed_bytes(n, d):
    # X, three (n, d) float64 temporaries of the E-step's expression, and the mask.
    return n * d * (4 * 8 + 1)


def available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---------------------------------------------------------------------------
# One implementation per child process. Each runner takes the iteration count
# and returns (log-likelihood of each iteration, or None; iterations done;
# final log-likelihood).


def runner(name, X, means, variances, weights, threads):
    K = means.shape[0]
    if name in ("fastem", "fastem-pure"):
        from fastem import as_observed
        from fastem._memory import run_em
        from fastem._validation import Params

        data = as_observed(X, missing_values=None)
        backend = "cython" if name == "fastem" else "python"
        params = Params(means, variances, weights)

        def run(n_iter):
            history = []
            result = run_em(data, params, tol=0, max_iter=n_iter, min_variance=0,
                            mean_threshold=0, backend=backend,
                            n_threads=threads if backend == "cython" else 1,
                            callback=lambda i, ll: history.append(ll))
            return history, result.n_iter, result.log_likelihood
        return run

    if name == "fastem-estimator":
        import fastem

        def run(n_iter):
            model = fastem.GaussianMixture(
                K, tol=0, max_iter=n_iter, min_variance=0, missing_values=None,
                weights_init=weights, means_init=means, variances_init=variances,
                n_threads=threads)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fastem.ConvergenceWarning)
                model.fit(X)
            return None, model.n_iter_, model.log_likelihood_
        return run

    if name == "sklearn":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture
        from threadpoolctl import threadpool_limits

        def run(n_iter):
            model = GaussianMixture(
                K, covariance_type="spherical", tol=0, reg_covar=1e-10, max_iter=n_iter,
                init_params="random_from_data", weights_init=weights, means_init=means,
                precisions_init=1.0 / variances, random_state=0)
            with threadpool_limits(limits=threads), warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X)
            # lower_bound_ is the mean log-likelihood per row of each E-step.
            history = [lb * X.shape[0] for lb in model.lower_bounds_]
            return history, model.n_iter_, history[-1]
        return run

    if name == "dense-course":
        from dense_course_em import estep_dense, mstep_dense

        def run(n_iter):
            mu, var, p = means, variances, weights
            history = []
            for _ in range(n_iter):
                post, log_likelihood = estep_dense(X, mu, var, p)
                mu, var, p = mstep_dense(X, post, mu, min_variance=0.0)
                history.append(log_likelihood)
            return history, n_iter, history[-1]
        return run

    raise ValueError(name)


def child_measure(spec):
    n, d, K = spec["n"], spec["d"], spec["K"]
    X, means, variances, weights = make_data(n, d, K, spec["seed"])
    rss_data = current_rss_mb()
    peak_reset = reset_peak_rss()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from threadpoolctl import threadpool_limits

    blas_threads = spec["threads"] if spec["name"] == "sklearn" else 1
    with threadpool_limits(limits=blas_threads):
        run = runner(spec["name"], X, means, variances, weights, spec["threads"])
        n0, n1 = 1, spec["n1"]
        start = time.perf_counter()
        run(n0)  # warm-up
        warmup = time.perf_counter() - start
        # A pair costs about n0 + n1 warm-up fits of one iteration.
        repeats = int(max(1, min(spec["repeats"], spec["budget"] // (warmup * (n0 + n1)))))
        times = {n0: [], n1: []}
        results = {}
        for _ in range(repeats):
            for count in (n0, n1):
                start = time.perf_counter()
                results[count] = run(count)
                times[count].append(time.perf_counter() - start)
    done0, done1 = results[n0][1], results[n1][1]
    t0, t1 = float(np.median(times[n0])), float(np.median(times[n1]))
    info = {"n": n, "d": d, "K": K, "name": spec["name"], "threads": spec["threads"],
            "n0": done0, "n1": done1, "times0": times[n0], "times1": times[n1],
            "per_iteration": (t1 - t0) / (done1 - done0) if done1 > done0 else float("nan"),
            "fit_seconds": t1, "history": results[n1][0], "final_ll": results[n1][2],
            "rss_data_mb": rss_data, "repeats": repeats, "blas_threads": blas_threads,
            "peak_rss_mb": process_peak_rss_mb() if peak_reset else None,
            "load": load}
    if spec["name"] == "sklearn":
        import sklearn
        from threadpoolctl import threadpool_info

        pools = sorted({f"{p['internal_api']} {p.get('version') or '?'}"
                        for p in threadpool_info()})
        info["versions"] = f"scikit-learn {sklearn.__version__}, thread pools: " \
            + ", ".join(pools)
    return info


# ---------------------------------------------------------------------------
# The parent.


def configurations(args):
    """(implementation, threads) pairs to run."""
    configs = []
    for name in args.implementations:
        if name in ("fastem", "sklearn"):
            configs += [(name, t) for t in args.threads]
        elif name == "fastem-estimator":
            configs.append((name, args.threads[-1]))
        else:
            configs.append((name, 1))
    return configs


def measure(args, shape, name, threads):
    n, d = shape
    spec = {"n": n, "d": d, "K": args.components, "seed": args.seed, "name": name,
            "threads": threads,
            "n1": args.slow_iterations if name in SLOW else args.iterations,
            "repeats": args.repeats, "budget": args.budget}
    return run_child([sys.executable, __file__, "--child", json.dumps(spec)])


def ll_check(result, reference):
    """Relative difference of the log-likelihoods after the last common iteration."""
    if reference is None or reference.get("history") is None:
        return "-"
    ref = reference["history"]
    if result.get("history"):
        k = min(len(result["history"]), len(ref))
        mine = result["history"][k - 1]
    elif result["n1"] <= len(ref):
        k, mine = result["n1"], result["final_ll"]
    else:
        return "-"
    rel = abs(mine - ref[k - 1]) / abs(ref[k - 1])
    return f"{rel:.1e} (iteration {k})"


def _best(results, name):
    found = [r for (n, _), r in results.items() if n == name and "skipped" not in r]
    return min(found, key=lambda r: r["per_iteration"]) if found else None


def table(args, shape, results):
    n, d = shape
    reference = _best(results, "fastem")
    sk_best = _best(results, "sklearn")
    rows = []
    for (name, threads), r in results.items():
        if "skipped" in r:
            rows.append([LABELS[name], threads, "-", "-", "-", "-", "-", "-", r["skipped"]])
            continue
        per = r["per_iteration"]
        vs_sk = f"{sk_best['per_iteration'] / per:.2f}x" if sk_best else "-"
        peak = "-" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f}"
        rows.append([LABELS[name], f"{threads} (BLAS {r['blas_threads']})",
                     f"{per * 1e3:.1f}", vs_sk, f"{r['n0']} / {r['n1']}", r["repeats"],
                     f"{r['fit_seconds']:.2f}", ll_check(r, reference),
                     f"{peak} (load {r['load']:.1f})"])
    headers = ["implementation", "threads", "ms / iteration", "speed vs best scikit-learn",
               "iterations n0 / n1", "timed pairs", "fit of n1 iterations (s)",
               "LL rel. diff vs fastem", "peak RSS from the data on (MB)"]
    text = (f"#### {n:,} x {d:,} complete, K = {args.components}\n\n"
            + markdown_table(headers, rows))
    lines = []
    both = max(args.threads)
    fe, sk = results.get(("fastem", both)), results.get(("sklearn", both))
    if fe and sk and "skipped" not in sk:
        ratio = sk["per_iteration"] / fe["per_iteration"]
        lines.append(f"fastem with {both} threads against scikit-learn with {both} BLAS "
                     f"threads: {ratio:.2f}x ({_verdict(ratio)})")
    if reference and sk_best:
        ratio = sk_best["per_iteration"] / reference["per_iteration"]
        lines.append(f"best against best (fastem {reference['threads']} thread(s), "
                     f"scikit-learn {sk_best['threads']}): {ratio:.2f}x ({_verdict(ratio)})")
    if lines:
        text += "\n\nTarget, fastem >= 2x as fast per iteration as scikit-learn: " \
                + "; ".join(lines) + "."
    return text


def _verdict(ratio):
    return "met" if ratio >= TARGET_RATIO else "**not met**"


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child_measure(json.loads(args.child))))
        return
    print_header("fastem against other EM implementations on complete data", {
        "data": ", ".join(f"{n:,} x {d:,}" for n, d in args.shapes)
                + f", K = {args.components}, seed {args.seed}",
        "implementations": " ".join(args.implementations),
        "threads": f"{' '.join(map(str, args.threads))} (fastem n_threads, scikit-learn "
                   "BLAS threads)",
        "iterations": f"n0 = 1 and n1 = {args.iterations} ({args.slow_iterations} for "
                      f"{', '.join(SLOW)}); up to {args.repeats} timed pairs after a "
                      f"warm-up, within about {args.budget:g} s per configuration",
    })
    started = time.perf_counter()
    sections, versions = [], None
    for shape in args.shapes:
        n, d = shape
        print(f"{n:,} x {d:,}:", flush=True)
        results = {}
        for name, threads in configurations(args):
            if name == "dense-course":
                available = available_bytes()
                needed = dense_needed_bytes(n, d)
                if available is not None and needed > 0.8 * available:
                    results[name, threads] = {
                        "skipped": f"skipped: needs about {needed / 2**30:.1f} GB, "
                                   f"{available / 2**30:.1f} GB available"}
                    print(f"  {name}: {results[name, threads]['skipped']}", flush=True)
                    continue
            r = measure(args, shape, name, threads)
            results[name, threads] = r
            versions = r.get("versions", versions)
            print(f"  {name:17s} threads={threads} {r['per_iteration'] * 1e3:9.1f} "
                  f"ms/iteration (fits of {r['n0']} and {r['n1']} iterations: "
                  f"{np.median(r['times0']):.2f} s, {np.median(r['times1']):.2f} s; "
                  f"{r['repeats']} pair(s))", flush=True)
        sections.append(table(args, shape, results))
    text = ("The machine was shared with other work while these ran (load average in "
            "the last column); ratios come from this run.")
    if versions:
        text += f" {versions}."
    text += "\n\n" + "\n\n".join(sections)
    text += f"\n\nWall time of the benchmark: {time.perf_counter() - started:.0f} s."
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_peers", text)
        print(f"\nappended to {args.markdown}")


if __name__ == "__main__":
    main()
