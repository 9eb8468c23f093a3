"""Time fastem.io.load_triples on large rating files.

Method: ``fastem.datasets.make_ratings`` draws ``--lines`` distinct ratings on
a MovieLens-25M-shaped matrix (162,541 users x 59,047 items by default), and
the script writes them twice to a temporary folder:

- ``ratings.tsv``: ``user<TAB>item<TAB>rating<TAB>timestamp``, integer
  ratings, lines in random order (as MovieLens ``u.data``);
- ``ratings.csv``: ``userId,movieId,rating,timestamp`` with a header,
  half-star ratings such as ``3.5``, lines sorted by user then item (as
  MovieLens ``ratings.csv``).

Each file is then loaded ``--repeats`` times (default 3) by a fresh Python
process, which reports the median wall time, the median CPU time (the loader
runs on one thread, so on a busy machine the wall time is the larger), lines
per second of wall time and its peak resident memory (the interpreter with
numpy and scipy, about 50 MB, is included; its size before loading is
reported too). The file is in the page
cache, so the figure is the parsing speed, not the disk's. ``--files`` times
existing files instead (MovieLens downloads, say).

Example::

    PYTHONPATH=. python benchmarks/bench_io.py --lines 10000000
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import append_markdown, markdown_table, peak_rss_mb, print_header, timeit_median
from fastem.datasets import make_ratings
from fastem.io import load_triples


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000_000,
                        help="ratings in each synthetic file (default: %(default)s)")
    parser.add_argument("--users", type=int, default=162_541)
    parser.add_argument("--items", type=int, default=59_047)
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed loads of each file (default: %(default)s)")
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--dir", type=Path,
                        help="write the synthetic files here and keep them "
                             "(default: a temporary folder, removed afterwards)")
    parser.add_argument("--files", type=Path, nargs="+", metavar="FILE",
                        help="time these files instead of synthetic ones")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the result table and the command line to FILE")
    # Internal: time one file in this process and print the result as JSON.
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------
# Writing the files, vectorised: Python string formatting of 10 million lines
# would take longer than the loads being measured.


def _digit_counts(values):
    counts = np.ones(values.shape[0], dtype=np.int64)
    bound = 10
    while bound <= values.max():
        counts += values >= bound
        bound *= 10
    return counts


def format_lines(columns, delimiter, decimals=()):
    """Bytes of the table ``columns`` (non-negative int arrays), one row per line.

    Columns whose position is in ``decimals`` hold tenths and are written
    with one decimal (35 -> ``3.5``).
    """
    widths = []
    for k, values in enumerate(columns):
        digits = _digit_counts(values)
        if k in decimals:
            digits = np.maximum(digits, 2) + 1  # a leading 0 and the point
        widths.append(digits)
    line_lengths = sum(widths) + len(columns)  # delimiters and the newline
    line_ends = np.cumsum(line_lengths)
    total = int(line_ends[-1])
    # One spare byte at the end absorbs the writes of digits a value lacks.
    out = np.full(total + 1, ord(delimiter), dtype=np.uint8)
    out[line_ends - 1] = ord("\n")
    field_start = line_ends - line_lengths
    for k, values in enumerate(columns):
        field_end = field_start + widths[k] - 1
        remaining = values.copy()
        position = 0  # characters written from the right
        for _ in range(int(widths[k].max())):
            if k in decimals and position == 1:
                out[field_end - 1] = ord(".")
                position += 1
                continue
            target = np.where(position < widths[k], field_end - position, total)
            out[target] = remaining % 10 + ord("0")
            remaining //= 10
            position += 1
        field_start = field_end + 2
    return out[:total].tobytes()


def write_files(folder, n_lines, n_users, n_items):
    """Write ratings.tsv and ratings.csv; return their paths."""
    data = make_ratings(n_users, n_items, n_lines, random_state=0)
    users = np.repeat(np.arange(1, data.n_samples + 1, dtype=np.int64),
                      np.diff(data.indptr))
    items = data.indices.astype(np.int64) + 1
    stars = data.data.astype(np.int64)
    rng = np.random.default_rng(1)
    timestamps = rng.integers(789_652_009, 1_700_000_000, size=n_lines)
    order = rng.permutation(n_lines)
    tsv = folder / "ratings.tsv"
    tsv.write_bytes(format_lines(
        [users[order], items[order], stars[order], timestamps[order]], "\t"))
    del order
    tenths = stars * 10 - 5 * (rng.random(n_lines) < 0.3)  # some half stars
    csv = folder / "ratings.csv"
    with open(csv, "wb") as f:
        f.write(b"userId,movieId,rating,timestamp\n")
        f.write(format_lines([users, items, tenths, timestamps], ",", decimals=(2,)))
    return [tsv, csv]


# ---------------------------------------------------------------------------
# Timing


def process_peak_rss_mb():
    """Peak resident memory of this process, in MB.

    Linux keeps ``ru_maxrss`` across fork and exec, so a child started by a
    big parent would report the parent's peak; ``VmHWM`` belongs to the
    process's own address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def measure(path, repeats, dtype):
    """Load ``path`` ``repeats`` times in this process; return a dict of results."""
    baseline = process_peak_rss_mb()
    result = {}
    cpu_times = []

    def run():
        start = time.process_time()
        result["data"] = load_triples(path, dtype=dtype)
        cpu_times.append(time.process_time() - start)

    median, times = timeit_median(run, repeats, warmup=0)
    data = result["data"]
    with open(path, "rb") as f:
        n_lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 24), b""))
    return {
        "file": str(path),
        "bytes": os.path.getsize(path),
        "lines": n_lines,
        "shape": list(data.shape),
        "nnz": int(data.nnz),
        "median": median,
        "times": times,
        # On a busy machine the wall time exceeds the CPU time (one thread).
        "cpu_median": float(np.median(cpu_times)),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": process_peak_rss_mb(),
    }


def measure_in_child(path, args):
    # A fresh process per file, so that its peak memory is that of one load.
    command = [sys.executable, __file__, "--measure", str(path),
               "--repeats", str(args.repeats), "--dtype", args.dtype]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(results, args):
    headers = ["file", "MB", "lines", "shape", "nnz", "median s", "runs s", "CPU s",
               "Mlines/s", "MB/s", "RSS before MB", "peak RSS MB"]
    rows = []
    for r in results:
        rows.append([
            Path(r["file"]).name,
            f"{r['bytes'] / 1e6:.0f}",
            f"{r['lines']:,}",
            " x ".join(f"{n:,}" for n in r["shape"]),
            f"{r['nnz']:,}",
            f"{r['median']:.2f}",
            ", ".join(f"{t:.2f}" for t in r["times"]),
            f"{r['cpu_median']:.2f}",
            f"{r['lines'] / r['median'] / 1e6:.2f}",
            f"{r['bytes'] / r['median'] / 1e6:.0f}",
            f"{r['baseline_rss_mb']:.0f}",
            f"{r['peak_rss_mb']:.0f}",
        ])
    table = markdown_table(headers, rows)
    print(table)
    if args.markdown:
        append_markdown(args.markdown, f"load_triples, {args.dtype}", table)


def main(argv=None):
    args = parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.repeats, np.dtype(args.dtype))))
        return
    print_header("fastem.io.load_triples", {
        "lines": f"{args.lines:,}" if not args.files else "given files",
        "matrix": f"{args.users:,} x {args.items:,}" if not args.files else "-",
        "repeats": str(args.repeats),
        "dtype": args.dtype,
    })
    if args.files:
        report([measure_in_child(path, args) for path in args.files], args)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        paths = write_files(folder, args.lines, args.users, args.items)
        print(f"wrote {', '.join(p.name for p in paths)} in "
              f"{time.perf_counter() - start:.1f} s\n")
        report([measure_in_child(path, args) for path in paths], args)


if __name__ == "__main__":
    main()
