"""Dask: seconds and bytes per EM iteration on a LocalCluster, against the in-memory fit.

Method: ``fastem.datasets.make_ratings`` draws ``--ratings`` ratings (default
20M) on the Netflix Prize shape (480,189 x 17,770). The initial parameters
are K random users' ratings with the column means elsewhere, variances 1
and weights 1/K (as ``bench_scale.py``). Each configuration then runs
``1 + --repeats`` EM iterations with ``tol=0`` from those parameters: the
first is a warm-up, and the figure is the median of the others, each timed
from one call of the iteration callback to the next (a fused pass over all
the ratings and the M-step).

- **In memory**: ``fastem._memory.run_em`` on the ``ObservedData`` with
  ``--memory-threads`` (default 1 and 2), before the cluster starts.
- **Dask**: a ``distributed.LocalCluster`` of ``--workers`` worker
  processes with ``--threads-per-worker`` threads each (default 2 x 1), on
  loopback. The CSR is cut into ``--blocks`` row blocks of consecutive
  rows, scattered to the workers (consecutive blocks on the same worker,
  as Dask places the chunks of a file it reads), and made a Dask array of
  scipy.sparse chunks; the fit's own code then builds and persists the
  blocks (``fastem.dask.as_source(..., for_fit=True)``) and iterates
  (``fastem._em.run_em`` on that source).
  The final parameters are compared with the in-memory run's (the same
  iterations: they must agree to 1e-9).

Bytes per iteration are measured three ways: the payloads, pickled (the
parameters, sent once to each worker; one block's statistics, of which
each worker's sum crosses the network once); the loopback interface's byte
counter over the iterations (``psutil``; every message of the client,
scheduler and workers, heartbeats included, and any other process's
loopback traffic on a shared machine); and the workers' own count of the
bytes they served to other workers and to the client
(``Worker.transfer_outgoing_bytes_total``: statistics and broadcast
copies, not the client's scatter to the first worker).

Example::

    PYTHONPATH=. python benchmarks/bench_dask.py --ratings 20M
"""

import argparse
import os
import pickle
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import (append_markdown, format_count, markdown_table, parse_count,
                     print_header, synthetic_params)
from fastem.datasets import NETFLIX_N_ITEMS, NETFLIX_N_USERS

MB = 1e6


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", default="20M",
                        help="observed entries (default: %(default)s)")
    parser.add_argument("--n-users", type=int, default=NETFLIX_N_USERS)
    parser.add_argument("--n-items", type=int, default=NETFLIX_N_ITEMS)
    parser.add_argument("--components", type=int, default=12,
                        help="K (default: %(default)s)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed iterations after one warm-up (default: %(default)s)")
    parser.add_argument("--memory-threads", type=int, nargs="+", default=[1, 2],
                        help="n_threads of the in-memory fits (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes (default: %(default)s)")
    parser.add_argument("--threads-per-worker", type=int, default=1,
                        help="threads per worker (default: %(default)s)")
    parser.add_argument("--blocks", type=int, default=None,
                        help="row blocks (default: 2 per worker)")
    parser.add_argument("--backend", choices=["cython", "python"], default="cython")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data and of the initial means")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result tables and the command line to FILE")
    args = parser.parse_args(argv)
    args.ratings = parse_count(args.ratings)
    if args.blocks is None:
        args.blocks = 2 * args.workers
    if args.repeats < 1 or args.blocks < 1 or args.workers < 1:
        parser.error("--repeats, --blocks and --workers must be at least 1")
    return args


def _versions():
    import dask
    import distributed

    return {"dask": dask.__version__, "distributed": distributed.__version__}


class _Clock:
    """An EM callback recording the seconds between successive iterations."""

    def __init__(self):
        self.stamps = [time.perf_counter()]

    def __call__(self, iteration, log_likelihood):
        self.stamps.append(time.perf_counter())

    def median(self):
        durations = np.diff(self.stamps)[1:]  # the first is the warm-up
        return float(statistics.median(durations)), durations.tolist()


def in_memory(data, params, args, n_threads):
    from fastem._memory import run_em

    clock = _Clock()
    result = run_em(data, params, tol=0, max_iter=1 + args.repeats, backend=args.backend,
                    n_threads=n_threads, callback=clock)
    return clock.median(), result.params


def _row_ranges(n_rows, n_blocks):
    bounds = np.linspace(0, n_rows, n_blocks + 1).round().astype(int)
    return list(zip(bounds[:-1], bounds[1:]))


def _scattered_array(client, csr, n_blocks):
    """A Dask array of scipy.sparse row blocks held by the workers, consecutive
    blocks on the same worker."""
    import dask
    import dask.array as da

    workers = sorted(client.scheduler_info()["workers"])
    ranges = _row_ranges(csr.shape[0], n_blocks)
    pieces = []
    for k, (first, last) in enumerate(ranges):
        worker = workers[k * len(workers) // len(ranges)]
        [future] = client.scatter([csr[first:last]], workers=[worker])
        pieces.append(da.from_delayed(dask.delayed(future), shape=(last - first, csr.shape[1]),
                                      dtype=csr.dtype, meta=csr[:0]))
    return da.concatenate(pieces, axis=0)


def _loopback_bytes():
    import psutil

    counters = psutil.net_io_counters(pernic=True)
    return counters["lo"].bytes_sent if "lo" in counters else float("nan")


def _worker_bytes(client):
    served = client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total)
    return sum(served.values())


def _payloads(data, params, blocks, kernels):
    """Pickled sizes: the parameters, and the statistics of one block."""
    from fastem._observed import row_subset
    from fastem.dask._source import _em_pass

    first, last = blocks[0]
    block = row_subset(data, np.arange(first, last))
    part = _em_pass(block, params, first, kernels, 1e-16)
    return (len(pickle.dumps(params, protocol=5)), len(pickle.dumps(part, protocol=5)))


def on_cluster(data, params, args):
    from distributed import Client, LocalCluster

    from fastem._em import run_em
    from fastem.dask import as_source

    csr = data.to_csr()
    with LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                      processes=True, host="127.0.0.1", dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.wait_for_workers(args.workers)
        start = time.perf_counter()
        X = _scattered_array(client, csr, args.blocks)
        scatter_seconds = time.perf_counter() - start
        start = time.perf_counter()
        blocks = as_source(X, missing_values=np.nan, backend=args.backend, n_threads=None,
                           for_fit=True)
        build_seconds = time.perf_counter() - start
        clock = _Clock()
        loopback, served = _loopback_bytes(), _worker_bytes(client)
        result = run_em(blocks, params, tol=0, max_iter=1 + args.repeats, callback=clock)
        iterations = 1 + args.repeats
        loopback = (_loopback_bytes() - loopback) / iterations
        served = (_worker_bytes(client) - served) / iterations
        placement = {}
        for owner in blocks.owners or []:
            placement[owner] = placement.get(owner, 0) + 1
    payload = _payloads(data, params, _row_ranges(data.n_samples, args.blocks),
                        blocks.kernels)
    return {"median": clock.median(), "params": result.params,
            "scatter_seconds": scatter_seconds, "build_seconds": build_seconds,
            "loopback": loopback, "served": served, "payload": payload,
            "blocks_per_worker": sorted(placement.values())}


def _relative_difference(a, b):
    return max(float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-300)))
               for x, y in zip(a, b))


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    from fastem.datasets import make_ratings

    K = args.components
    print_header("bench_dask: EM iterations on a Dask LocalCluster", {
        **_versions(), "ratings": f"{args.ratings:,}",
        "shape": f"{args.n_users:,} x {args.n_items:,}", "K": K, "dtype": args.dtype,
        "cluster": f"{args.workers} workers x {args.threads_per_worker} threads, "
                   f"{args.blocks} row blocks"})
    start = time.perf_counter()
    data = make_ratings(args.n_users, args.n_items, args.ratings, random_state=args.seed,
                        dtype=np.dtype(args.dtype))
    print(f"generated {format_count(args.ratings)} ratings in "
          f"{time.perf_counter() - start:.1f} s", flush=True)
    params = synthetic_params(data, K, args.seed)
    entries = data.nnz * K

    rows = []
    reference = None
    for n_threads in args.memory_threads:
        (median, times), final = in_memory(data, params, args, n_threads)
        reference = reference or median
        rows.append([f"in memory, n_threads={n_threads}", f"{median:.4f}",
                     f"{median / entries * 1e9:.3f}", f"{reference / median:.2f}x",
                     " ".join(f"{t:.3f}" for t in times)])
        expected = final
        print(rows[-1], flush=True)
    cluster = on_cluster(data, params, args)
    median, times = cluster["median"]
    rows.append([f"Dask LocalCluster, {args.workers} x {args.threads_per_worker} thread(s)",
                 f"{median:.4f}", f"{median / entries * 1e9:.3f}",
                 f"{reference / median:.2f}x", " ".join(f"{t:.3f}" for t in times)])
    difference = _relative_difference(cluster["params"], expected)

    d = args.n_items
    params_bytes, part_bytes = cluster["payload"]
    time_table = markdown_table(
        ["configuration", "s / iteration (median)", "ns / (entry x K)",
         "speed vs in memory, 1st row", "each timed iteration (s)"], rows)
    bytes_table = markdown_table(
        ["what", "bytes", "per"],
        [["parameters out (pickled; K x d means + K variances + K weights)",
          f"{params_bytes:,}", "worker and iteration"],
         ["statistics back (pickled; 2 K x d sums + K + K + an exact log-likelihood)",
          f"{part_bytes:,}", "block task; one sum per worker crosses the network"],
         ["K x d x 8 for comparison", f"{K * d * 8:,}", "-"],
         ["loopback interface, all processes (measured)", f"{cluster['loopback']:,.0f}",
          "iteration"],
         ["served by the workers to peers and client (measured)",
          f"{cluster['served']:,.0f}", "iteration"]])
    text = (f"{format_count(args.ratings)} ratings on {args.n_users:,} x {d:,}, K = {K}, "
            f"{args.dtype}, {args.blocks} row blocks (per worker: "
            f"{cluster['blocks_per_worker']}); median of {args.repeats} iterations after "
            f"a warm-up; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}.\n\n"
            f"{time_table}\n\nBytes per iteration:\n\n{bytes_table}\n\n"
            f"One-off: scattering the CSR blocks to the workers "
            f"{cluster['scatter_seconds']:.1f} s, building and persisting the fit's "
            f"blocks {cluster['build_seconds']:.1f} s. Final parameters, Dask against in "
            f"memory after the same {1 + args.repeats} iterations: largest relative "
            f"difference {difference:.1e} ({'ok' if difference < 1e-9 else 'ABOVE 1e-9'}).")
    print()
    print(text)
    if args.markdown:
        append_markdown(args.markdown, "Dask", text)
    return 0 if difference < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
