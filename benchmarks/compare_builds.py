"""Two builds of the compiled kernels, timed against each other in one process.

Method: loads ``fastem/_kernels_avx2`` (or ``--module``) from two source
trees, each built in place (``python setup.py build_ext --inplace``), and
times one fused pass (K = 12 or ``--components``, float64) of each on the same data, in turns,
after one warm-up each; reports the medians and the median of the per-turn
ratios (new / base), which a machine shared with other work disturbs far
less than it does the absolute times.

Data: ``ratings``, ``make_ratings(480_189, 17_770, --ratings)`` (the
Netflix Prize shape); ``dense``, 100,000 x 500 complete N(0, 1) entries.

With ``--fit N``, whole fits are compared too: each tree's package is loaded
under a name of its own (``fastem_base``, ``fastem_new``, their Python code
and their builds), and ``GaussianMixture(K, init_params='random_from_data',
tol=0, max_iter=N, random_state=0)`` of each fits the same ratings (each
tree's own ObservedData over the same arrays) in turns: the initialisation,
N fused passes and M-steps, and all the Python around them.

Example (the base tree: a checkout of an earlier commit, built in place)::

    git worktree add /tmp/base <commit> && (cd /tmp/base && python setup.py build_ext --inplace)
    PYTHONPATH=. python benchmarks/compare_builds.py /tmp/base . --data ratings dense
"""

import argparse
import importlib.machinery
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import parse_count, print_header


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", type=Path, help="source tree of the base build")
    parser.add_argument("new", type=Path, help="source tree of the new build")
    parser.add_argument("--data", nargs="+", choices=["ratings", "dense"],
                        default=["ratings", "dense"])
    parser.add_argument("--ratings", default="20M", help="ratings of 'ratings' data")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--components", type=int, nargs="+", default=[12],
                        help="K of the passes (default: %(default)s)")
    parser.add_argument("--turns", type=int, default=9, help="timed passes of each build")
    parser.add_argument("--module", default="_kernels_avx2",
                        help="extension module to compare (default: %(default)s)")
    parser.add_argument("--fit", type=int, default=0, metavar="N",
                        help="also compare whole fits of N EM iterations on 'ratings'")
    return parser.parse_args(argv)


def load_package(tree, alias):
    """The package ``fastem`` of ``tree`` (with its build), imported as ``alias``."""
    folder = tree / "fastem"
    spec = importlib.util.spec_from_file_location(
        alias, folder / "__init__.py", submodule_search_locations=[str(folder)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[alias] = package
    spec.loader.exec_module(package)
    return package


def compare_fits(trees, arrays, n_threads, turns, n_components, n_iter):
    """Seconds of whole fits of each tree's package, in turns; and their log-likelihoods."""
    packages = [load_package(tree, alias) for tree, alias in zip(trees, ("fastem_base",
                                                                        "fastem_new"))]
    data, indices, indptr, n_features = arrays
    inputs = []
    for package in packages:
        observed = importlib.import_module(package.__name__ + ".datasets").ObservedData
        inputs.append(observed(data, indices, indptr, n_features, copy=False))

    def one(k):
        model = packages[k].GaussianMixture(
            n_components, init_params="random_from_data", tol=0, max_iter=n_iter,
            random_state=0, n_threads=n_threads)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0: never "converged"
            model.fit(inputs[k])
        return time.perf_counter() - start, model.log_likelihood_

    warm = [one(k) for k in range(2)]
    times = np.array([[one(k)[0] for k in range(2)] for _ in range(turns)])
    return times, [loglik for _, loglik in warm]


def load_build(tree, module):
    """The extension ``fastem.<module>`` built in ``tree``, as its own module object."""
    name = f"fastem.{module}"
    paths = sorted((tree / "fastem").glob(f"{module}.*.so")) + sorted(
        (tree / "fastem").glob(f"{module}.*.pyd"))
    if not paths:
        sys.exit(f"no built {name} in {tree}/fastem: build it in place first")
    loader = importlib.machinery.ExtensionFileLoader(name, str(paths[0]))
    spec = importlib.util.spec_from_loader(name, loader)
    built = importlib.util.module_from_spec(spec)
    loader.exec_module(built)
    return built


def make_data(kind, n_ratings):
    if kind == "ratings":
        from fastem.datasets import make_ratings
        X = make_ratings(480_189, 17_770, n_ratings, random_state=0)
        return X.data, X.indices, X.indptr, X.n_features
    n_samples, n_features = 100_000, 500
    data = np.random.default_rng(0).normal(size=n_samples * n_features)
    indices = np.tile(np.arange(n_features, dtype=np.int32), n_samples)
    indptr = np.arange(0, n_samples * n_features + 1, n_features, dtype=np.int32)
    return data, indices, indptr, n_features


def compare(builds, arrays, n_threads, turns, n_components):
    data, indices, indptr, n_features = arrays
    n_samples = indptr.shape[0] - 1
    rng = np.random.default_rng(0)
    means = rng.uniform(1, 5, (n_components, n_features))
    variances = np.ones(n_components)
    log_weights = np.log(np.full(n_components, 1.0 / n_components))
    post = np.empty((n_samples, n_components))
    row_loglik = np.empty(n_samples)
    stats = [np.empty(n_components), np.empty((n_components, n_features)),
             np.empty((n_components, n_features)), np.empty(n_components)]
    workspace = np.empty(builds[0].workspace_size(n_components, n_features, n_threads))

    def one(build):
        start = time.perf_counter()
        build.fused_pass(data, indices, indptr, means, variances, log_weights, False,
                         post, row_loglik, *stats, n_threads, workspace)
        return time.perf_counter() - start

    for build in builds:
        one(build)
    times = np.array([[one(build) for build in builds] for _ in range(turns)])
    return times


def main(argv=None):
    args = parse_args(argv)
    print_header("two builds of the kernels, one fused pass each, in turns", {
        "base": str(args.base.resolve()), "new": str(args.new.resolve()),
        "module": args.module, "turns": str(args.turns)})
    builds = [load_build(args.base, args.module), load_build(args.new, args.module)]
    print("| data | observed | K | threads | base s / pass | new s / pass | "
          "new / base (median of turns) | ns / (entry x K), new |")
    print("|---|---|---|---|---|---|---|---|")
    for kind in args.data:
        arrays = make_data(kind, parse_count(args.ratings))
        nnz = arrays[0].shape[0]
        for K in args.components:
            for n_threads in args.threads:
                times = compare(builds, arrays, n_threads, args.turns, K)
                base, new = np.median(times, axis=0)
                ratio = np.median(times[:, 1] / times[:, 0])
                print(f"| {kind} | {nnz:,} | {K} | {n_threads} | {base:.4f} | {new:.4f} | "
                      f"{ratio:.3f} | {new / nnz / K * 1e9:.3f} |", flush=True)
    if args.fit:
        arrays = make_data("ratings", parse_count(args.ratings))
        print(f"\nwhole fits, {args.fit} EM iterations after 'random_from_data'")
        print("| observed | K | threads | base s / fit | new s / fit | "
              "new / base (median of turns) | log-likelihoods base, new |")
        print("|---|---|---|---|---|---|---|")
        for K in args.components:
            for n_threads in args.threads:
                times, logliks = compare_fits((args.base, args.new), arrays, n_threads,
                                              args.turns, K, args.fit)
                base, new = np.median(times, axis=0)
                ratio = np.median(times[:, 1] / times[:, 0])
                print(f"| {arrays[0].shape[0]:,} | {K} | {n_threads} | {base:.3f} | "
                      f"{new:.3f} | {ratio:.3f} | {logliks[0]:.12g}, {logliks[1]:.12g} |",
                      flush=True)


if __name__ == "__main__":
    main()
