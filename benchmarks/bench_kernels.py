"""Time one EM iteration per backend and thread count, and a full course run.

One iteration is what ``fastem._em.run_em`` does per loop: a fused pass (the
E-step and the M-step's sums) followed by the M-step. It is timed on

(a) the course's netflix_incomplete.txt (1200 x 1200, 0 = missing), and
(b) synthetic ratings from ``fastem.datasets.make_ratings`` on the Netflix
    Prize shape (480,189 x 17,770, 20 million ratings by default).

On (a) it also times the course's full run (K = 12, seed 1, to convergence)
against the dense NumPy yardstick in ``dense_course_em.py`` and checks that
both reach the same log-likelihood.

Example::

    PYTHONPATH=. python benchmarks/bench_kernels.py --backends python cython --threads 1 2
"""

import argparse
import sys
from pathlib import Path
from time import perf_counter

import numpy as np

from _common import (append_markdown, markdown_table, print_header, synthetic_params,
                     timeit_median)
from dense_course_em import run_dense
from fastem._backend import get_backend
from fastem import as_observed
from fastem._em import mstep
from fastem._memory import run_em
from fastem._pass import PassBuffers
from fastem._validation import Params, check_params
from fastem.course import init
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS, make_ratings

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO_ROOT / ".." / "shared" / "data" / "mit686x"
COURSE_FILE = "netflix_incomplete.txt"
COURSE_K, COURSE_SEED = 12, 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"folder holding {COURSE_FILE} (default: %(default)s)")
    parser.add_argument("--n-ratings", type=int, default=20_000_000,
                        help="ratings in the synthetic matrix (default: %(default)s)")
    parser.add_argument("--components", type=int, default=12,
                        help="K of the synthetic benchmark (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed iterations per configuration (default: %(default)s)")
    parser.add_argument("--course-repeats", type=int, default=3,
                        help="whole course runs per implementation (default: %(default)s)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                        help="dtype of the observed values (default: %(default)s)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="n_threads of the compiled backend (default: 1 2); "
                             "the pure backend is serial and runs once")
    parser.add_argument("--backends", nargs="+", choices=["python", "cython"],
                        default=["python", "cython"],
                        help="backends to time; cython is skipped if it does not import")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the synthetic data and its initial means")
    parser.add_argument("--skip-course", action="store_true",
                        help="skip (a), the course data")
    parser.add_argument("--skip-synthetic", action="store_true",
                        help="skip (b), the synthetic data")
    parser.add_argument("--skip-course-run", action="store_true",
                        help="skip the full course run against the dense yardstick")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result tables and the command line to FILE")
    return parser.parse_args(argv)


def available_backends(names):
    found = []
    for name in names:
        try:
            get_backend(name)
        except (ImportError, OSError) as exc:
            print(f"skipping backend {name!r}: the compiled extension does not import ({exc})")
            continue
        found.append(name)
    return found


def configurations(backends, threads):
    """(backend, n_threads) pairs; the pure backend is serial, so it runs once.

    The pure backend comes last: its large temporaries leave the heap
    fragmented, which costs the compiled pass its huge pages (about 30% of
    its speed) when it runs afterwards in the same process.
    """
    for backend in sorted(set(backends), key=lambda name: name == "python"):
        if backend == "python":
            yield backend, 1
        else:
            yield from ((backend, t) for t in threads)


def time_iterations(name, data, params, configs, repeats):
    """Median seconds of one iteration (fused pass + M-step) per configuration."""
    params = check_params(params, data.n_features)
    n_components = params.means.shape[0]
    timings = []
    for backend, n_threads in configs:
        buffers = PassBuffers(n_components, data.n_features, backend=backend,
                              n_threads=n_threads)

        def iteration():
            buffers.fused_pass(data, params)
            mstep(buffers.stats, params.means, params.variances, data.n_samples)

        seconds, _ = timeit_median(iteration, repeats, warmup=1)
        threads = "1 (serial)" if backend == "python" else str(n_threads)
        ns_per = seconds / (data.nnz * n_components) * 1e9
        print(f"  {backend:6s} threads={threads:10s} {seconds:9.4f} s/iter "
              f"{ns_per:8.2f} ns/(entry*K)", flush=True)
        timings.append((backend, threads, seconds, ns_per))
    reference = next((t[2] for t in timings if t[0] == "python"), None)
    rows = []
    for backend, threads, seconds, ns_per in timings:
        speedup = f"{reference / seconds:.1f}x" if reference else "-"
        rows.append([name, f"{data.n_samples:,} x {data.n_features:,}", f"{data.nnz:,}",
                     n_components, data.data.dtype, backend, threads,
                     f"{seconds:.4f}", f"{ns_per:.2f}", speedup])
    return rows


ITERATION_HEADERS = ["data", "shape", "observed", "K", "dtype", "backend", "threads",
                     "s / iteration", "ns / (entry x K)", "vs python"]


def course_run(X, data, configs, repeats):
    """The course run (K = 12, seed 1) by each backend and by the dense yardstick.

    Seconds are the median of ``repeats`` whole runs.
    """
    mixture, _ = init(X, COURSE_K, COURSE_SEED)
    dense_seconds, dense = _median_run(
        lambda: run_dense(X, mixture.mu, mixture.var, mixture.p), repeats)
    dense_ll, dense_iter = dense[4], dense[5]
    print(f"  dense NumPy            {dense_seconds:9.3f} s  {dense_iter} iterations  "
          f"LL = {dense_ll:.10f}", flush=True)
    tolerance = 1e-9 if data.data.dtype == np.float64 else 1e-6
    rows = [["dense NumPy (course yardstick)", "1", dense_iter, f"{dense_seconds:.3f}",
             f"{dense_ll:.7f}", "-", "1.0x"]]
    params = Params(mixture.mu, mixture.var, mixture.p)
    for backend, n_threads in configs:
        seconds, result = _median_run(
            lambda: run_em(data, params, backend=backend, n_threads=n_threads), repeats)
        rel = abs(result.log_likelihood - dense_ll) / abs(dense_ll)
        verdict = "ok" if rel <= tolerance else f"MISMATCH (> {tolerance:g})"
        threads = "1 (serial)" if backend == "python" else str(n_threads)
        print(f"  {backend:6s} threads={threads:10s} {seconds:9.3f} s  "
              f"{result.n_iter} iterations  LL = {result.log_likelihood:.10f}  "
              f"rel. diff {rel:.2e} {verdict}", flush=True)
        rows.append([f"fastem {backend}", threads, result.n_iter, f"{seconds:.3f}",
                     f"{result.log_likelihood:.7f}", f"{rel:.1e} {verdict}",
                     f"{dense_seconds / seconds:.1f}x"])
    return rows


def _median_run(run, repeats):
    """(median seconds, result of the last run) of ``repeats`` calls of ``run``."""
    seconds = []
    for _ in range(repeats):
        start = perf_counter()
        result = run()
        seconds.append(perf_counter() - start)
    return float(np.median(seconds)), result


RUN_HEADERS = ["implementation", "threads", "iterations", "seconds", "log-likelihood",
               "rel. diff vs dense", "speed-up vs dense"]


def main(argv=None):
    args = parse_args(argv)
    dtype = np.dtype(args.dtype)
    course_path = args.data_dir / COURSE_FILE
    extra = {
        "threads": " ".join(map(str, args.threads)),
        "repeats": f"{args.repeats} (median, after 1 warm-up)",
        "dtype": args.dtype,
        "course data": str(course_path.resolve()),
        "synthetic data": f"make_ratings({NETFLIX_N_USERS:,}, {NETFLIX_N_ITEMS:,}, "
                          f"{args.n_ratings:,}, random_state={args.seed}), K={args.components}",
    }
    print_header("fastem kernel benchmark", extra)
    backends = available_backends(args.backends)
    if not backends:
        sys.exit("no backend to benchmark")
    configs = list(configurations(backends, args.threads))
    iteration_rows, run_rows = [], []

    if not args.skip_course:
        if course_path.is_file():
            X = np.loadtxt(course_path)
            data = as_observed(X, missing_values=0, dtype=dtype)
            mixture, _ = init(X, COURSE_K, COURSE_SEED)
            print(f"(a) {COURSE_FILE}: {data.n_samples} x {data.n_features}, "
                  f"{data.nnz:,} observed, K={COURSE_K}", flush=True)
            iteration_rows += time_iterations(
                COURSE_FILE, data, Params(mixture.mu, mixture.var, mixture.p),
                configs, args.repeats)
            if not args.skip_course_run:
                print(f"(a) full course run, K={COURSE_K}, seed={COURSE_SEED}", flush=True)
                run_rows = course_run(X, data, configs, args.course_repeats)
            del X, data
        else:
            print(f"skipping (a): {course_path} not found (see --data-dir)")

    if not args.skip_synthetic:
        print(f"(b) generating {args.n_ratings:,} synthetic ratings ...", flush=True)
        start = perf_counter()
        data = make_ratings(NETFLIX_N_USERS, NETFLIX_N_ITEMS, args.n_ratings,
                            random_state=args.seed, dtype=dtype)
        print(f"    done in {perf_counter() - start:.1f} s", flush=True)
        params = synthetic_params(data, args.components, args.seed)
        iteration_rows += time_iterations(
            f"make_ratings (seed {args.seed})", data, params, configs, args.repeats)

    text = "### Time per EM iteration (fused pass + M-step)\n\n"
    text += markdown_table(ITERATION_HEADERS, iteration_rows)
    if run_rows:
        text += (f"\n\n### Course run on {COURSE_FILE}, K={COURSE_K}, seed={COURSE_SEED}, "
                 f"to convergence (median of {args.course_repeats} runs)\n\n")
        text += markdown_table(RUN_HEADERS, run_rows)
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "bench_kernels", text)
        print(f"\nappended to {args.markdown}")


if __name__ == "__main__":
    main()
