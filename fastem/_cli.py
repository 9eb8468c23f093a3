"""The ``fastem`` command: fit, predict, evaluate, select, demo, bench.

Every error is one line on stderr, ``fastem: error: ...``, with exit status
1 (2 for a bad command line, 130 when interrupted), never a traceback.
Outputs are written to a temporary file in the destination folder, then
renamed to their name, so an interrupted run leaves no partial file; an
existing file is replaced only with ``--force``.
"""

import argparse
import contextlib
import math
import os
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from . import io as rating_io
from ._backend import MAX_THREADS, backend_info
from ._evaluate import evaluate_holdout
from ._persist import ModelFileError
from ._predict import IdIndex, model_column_index, predict_pairs, read_pairs
from ._progress import FitProgress, StepProgress, end_line
from ._selection import select_n_components
from .mixture import GaussianMixture, load

__all__ = ["main", "build_parser", "CommandError"]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command killed by it
# Beyond this many entries --fill refuses to write a dense matrix.
MAX_FILL_ENTRIES = 50_000_000
DEFAULT_CANDIDATES = [1, 2, 4, 8, 16]


class CommandError(Exception):
    """An error reported to the user as one line, without a traceback."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line in fastem's form."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"fastem: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not >= 1")
    return value


def _thread_count(text):
    value = _positive_int(text)
    if value > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_THREADS}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 2**31)")
    return value


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not strictly between 0 and 1")
    return value


def _tolerance(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value


# ---------------------------------------------------------------------------
# input and output
# ---------------------------------------------------------------------------

def _load_ratings(path, format):
    """The ratings of ``path`` (fastem.io.load), refusing a file without any."""
    if Path(path).is_dir():
        raise CommandError(f"{path} is a folder, not a ratings file")
    suffix = Path(path).suffix.lower()
    if format is None and Path(path).exists() and suffix not in rating_io._EXTENSIONS:
        # fastem.io would say format=, the keyword; here it is an option.
        raise CommandError(f"{path}: cannot tell the format from the extension "
                           f"{suffix or '(none)'!r}; pass --format "
                           f"{{{','.join(rating_io.FORMATS)}}}")
    ratings = rating_io.load(path, format=format)
    if ratings.nnz == 0:
        raise CommandError(f"{path}: the file holds no rating")
    return ratings


def _describe(path, ratings):
    n_users, n_items = ratings.shape
    return (f"{Path(path).name}: {n_users:,} users x {n_items:,} items, "
            f"{ratings.nnz:,} ratings")


def _check_output(path, force):
    """Fail before any work if ``path`` cannot be written as an output."""
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise CommandError(f"{path} is a folder; name an output file")
    if target.exists() and not force:
        raise CommandError(f"{path} exists; pass --force to replace it")
    if not target.absolute().parent.is_dir():
        raise CommandError(f"cannot write {path}: folder {target.parent} does not exist")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_output(path, force, binary=False):
    """A file to write ``path`` through: a temporary file renamed at the end.

    ``'-'`` is stdout (text only). Without ``force`` an existing ``path``
    is never replaced, not even one that appears while the output is written.
    """
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    _check_output(path, force)
    target = Path(path).absolute()
    descriptor, temporary = tempfile.mkstemp(dir=target.parent,
                                             prefix=f".{target.name}.", suffix=".part")
    try:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(descriptor, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file private; give it the usual permissions.
        os.chmod(temporary, 0o666 & ~_umask())
        if force:
            os.replace(temporary, target)
            return
        try:
            # A hard link fails if the name exists, so nothing is ever replaced.
            os.link(temporary, target)
        except FileExistsError:
            raise CommandError(f"{path} exists; pass --force to replace it") from None
        except OSError:
            # No hard links on this file system: check, then rename.
            if target.exists():
                raise CommandError(f"{path} exists; pass --force to replace it") from None
            os.replace(temporary, target)
        else:
            os.unlink(temporary)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _format_table(headers, rows, align=None):
    """Rows of strings as aligned columns: text left-aligned, numbers right."""
    align = align or ["<"] + [">"] * (len(headers) - 1)
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = []
    for row in [headers, *rows]:
        cells = [f"{str(cell):{a}{w}}" for cell, a, w in zip(row, align, widths)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _wrap(text):
    """A help description as paragraphs wrapped for a terminal."""
    return "\n\n".join(textwrap.fill(" ".join(part.split()), 79)
                       for part in text.split("\n\n"))


def _count(n, singular, plural=None):
    """'1 pair', '3 pairs'."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"


def _warn(message):
    print(f"fastem: warning: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# options shared by the commands
# ---------------------------------------------------------------------------

def _model_options():
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("model")
    group.add_argument("--covariance", choices=["spherical", "diag"], default="spherical",
                       help="one variance per component (spherical, the course's "
                            "model) or per component and item (diag); "
                            "default: %(default)s")
    group.add_argument("--n-init", type=_positive_int, default=1, metavar="N",
                       help="EM restarts; the best log-likelihood is kept "
                            "(default: %(default)s)")
    group.add_argument("--seed", type=_seed, default=0, metavar="S",
                       help="seed of the initialisation (and of the hold-out split); "
                            "restart r uses seed S + r (default: %(default)s)")
    group.add_argument("--max-iter", type=_positive_int, default=1000, metavar="N",
                       help="EM iterations per restart (default: %(default)s)")
    group.add_argument("--tol", type=_tolerance, default=1e-6,
                       help="stop when the log-likelihood rises by less than TOL times "
                            "its size (default: %(default)s)")
    group.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                       help="threads of the compiled kernels (default: every core; "
                            "OMP_NUM_THREADS)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress display on stderr")
    return parent


def _data_options():
    parent = _Parser(add_help=False)
    parent.add_argument("--format", choices=rating_io.FORMATS, default=None,
                        help="format of DATA (default: from the extension: .csv .tsv "
                             ".dat .data triples, .mtx Matrix Market, .npz scipy "
                             "sparse, .txt dense or triples by its first line)")
    return parent


def _make_model(args, n_components):
    """The estimator of the options, with a progress display unless --quiet."""
    model = GaussianMixture(n_components, covariance_type=args.covariance,
                            n_init=args.n_init, max_iter=args.max_iter, tol=args.tol,
                            random_state=args.seed, n_threads=args.threads)
    progress = None
    if not args.quiet:
        progress = FitProgress(sys.stderr, tol=args.tol, max_iter=args.max_iter)
        model._progress = progress
    return model, progress


def _check_k(k, ratings, option="-k"):
    n_users = ratings.shape[0]
    if k > n_users:
        raise CommandError(f"{option} {k} is more than the {n_users:,} users (rows) of "
                           "the data; lower it")


def _fit_line(model, seconds, what="fitted"):
    status = "converged" if model.converged_ else "not converged: see --max-iter"
    restarts = f"{model.n_init} restarts" if model.n_init > 1 else "1 restart"
    return (f"{what} K = {model.n_components} ({model.covariance_type}, {restarts}, "
            f"seed {model.random_state}): {_count(model.n_iter_, 'iteration')} ({status}), "
            f"{seconds:.2f} s")


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------

def _cmd_fit(args):
    output = args.output or f"{Path(args.data).stem}.k{args.k}.npz"
    _check_output(output, args.force)
    start = time.perf_counter()
    ratings = _load_ratings(args.data, args.format)
    print(f"read {_describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    _check_k(args.k, ratings)
    data = ratings.to_observed()
    model, progress = _make_model(args, args.k)
    start = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - start
    if progress is not None:
        progress.close()
    bic = model.bic(data)
    print(_fit_line(model, seconds))
    print(f"  log-likelihood  {model.log_likelihood_:.10g} "
          f"({model.log_likelihood_ / ratings.nnz:.4f} per rating)")
    print(f"  BIC             {bic:.10g} (lower is better)")
    with _atomic_output(output, args.force, binary=True) as handle:
        model.save(handle, row_labels=ratings.row_labels, column_labels=ratings.col_labels)
    print(f"model written to {output}, with the ids of the {ratings.shape[0]:,} users "
          f"and {ratings.shape[1]:,} items")
    return 0


# ---------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------

def _load_model(path):
    if not Path(path).exists():
        raise CommandError(f"{path}: no such model file")
    return load(path)


def _cmd_predict(args):
    if args.fill and args.ratings is not None:
        raise CommandError("--fill completes DATA itself, with its own ratings; "
                           "drop --ratings")
    if not args.fill and args.ratings is None:
        raise CommandError(
            "predict needs --ratings FILE: the observed ratings the predictions "
            "condition on (usually the file the model was fitted on)")
    _check_output(args.output, args.force)
    report = sys.stderr if args.output == "-" else sys.stdout
    model = _load_model(args.model)
    if args.threads is not None:
        model.n_threads = args.threads
    if args.fill:
        return _fill(model, args, report)
    ratings = _load_ratings(args.ratings, args.ratings_format)
    columns = model_column_index(model)
    users = IdIndex(ratings.row_labels)

    pairs = read_pairs(args.data, lambda user, item: user in users or item in columns)
    predicted, info = predict_pairs(model, ratings, pairs)
    with _atomic_output(args.output, args.force) as handle:
        handle.write("user\titem\tpredicted_rating\n")
        handle.writelines(f"{user}\t{item}\t{value:.6g}\n"
                          for user, item, value in zip(pairs.users, pairs.items, predicted))
    unknown = info["unknown_items"]
    if unknown:
        n_pairs = int(np.isnan(predicted).sum())
        _warn(f"the model does not know {_count(len(unknown), 'item')} of {args.data} "
              f"(first: {unknown[0]!r}), in {_count(n_pairs, 'pair')}: "
              "predicted_rating nan")
    if info["dropped_ratings"]:
        _warn(f"{_count(info['dropped_ratings'], 'rating')} in {args.ratings} of items "
              "the model does not know were left out of the posteriors")
    if not args.quiet:
        n_users = len(set(pairs.users))
        print(f"predicted {_count(len(pairs.users), 'pair')} of "
              f"{_count(n_users, 'user')} ({info['users_without_ratings']:,} without "
              f"ratings in {args.ratings}: predicted from the mixture weights) -> "
              f"{args.output}", file=report)
    return 0


def _fill(model, args, report):
    ratings = _load_ratings(args.data, args.format)
    n_users, n_items = ratings.shape
    if n_items != model.n_features_in_:
        raise CommandError(f"{args.data} has {n_items:,} items (columns) but the model "
                           f"{model.n_features_in_:,}")
    columns = model_column_index(model).find_labels(ratings.col_labels)
    if not np.array_equal(columns, np.arange(n_items)):
        raise CommandError(f"the items (columns) of {args.data} are not those of the "
                           "model, in the same order; --fill needs them to be")
    if n_users * n_items > MAX_FILL_ENTRIES:
        raise CommandError(f"the completed matrix would have {n_users * n_items:,} "
                           f"entries (more than {MAX_FILL_ENTRIES:,}); predict pairs "
                           "instead of --fill")
    filled = model.fill(ratings.to_observed())
    with _atomic_output(args.output, args.force) as handle:
        np.savetxt(handle, filled, fmt="%.6g")
    if not args.quiet:
        print(f"completed the {n_users:,} x {n_items:,} matrix of {args.data} "
              f"({n_users * n_items - ratings.nnz:,} entries predicted) -> {args.output}",
              file=report)
    return 0


# ---------------------------------------------------------------------------
# evaluate and demo
# ---------------------------------------------------------------------------

def _print_evaluation(evaluation, test_fraction, seed):
    held = evaluation.heldout.values.shape[0]
    print(f"held out {test_fraction:.0%} of the ratings at random (seed {seed}): "
          f"{evaluation.train.nnz:,} to fit, {held:,} to score")
    print(_fit_line(evaluation.model, evaluation.fit_seconds, "fitted the rest with"))
    print(f"held-out log-likelihood: {evaluation.heldout_log_likelihood:.4f} per rating")
    print()
    rows = [(name, f"{rmse:.4f}", f"{mae:.4f}") for name, rmse, mae in evaluation.scores]
    print(_format_table(["predictor of the held-out ratings", "RMSE", "MAE"], rows))


def _cmd_evaluate(args):
    start = time.perf_counter()
    ratings = _load_ratings(args.data, args.format)
    print(f"read {_describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    _check_k(args.k, ratings)
    model, progress = _make_model(args, args.k)
    evaluation = evaluate_holdout(ratings.to_observed(), model, args.test_fraction,
                                  args.seed)
    if progress is not None:
        progress.close()
    _print_evaluation(evaluation, args.test_fraction, args.seed)
    return 0


def _backend_line():
    info = backend_info()
    if info["backend"] == "python":
        return "pure NumPy backend"
    threads = "OpenMP" if info["openmp"] else "no OpenMP"
    return (f"compiled kernels ({info['simd']} build, {threads}, "
            f"{info['max_threads']} threads)")


def _cmd_demo(args):
    from .datasets import make_ratings

    print(f"fastem {__version__}, {_backend_line()}")
    start = time.perf_counter()
    data = make_ratings(args.n_users, args.n_items, args.n_ratings, n_groups=args.groups,
                        random_state=args.seed)
    print(f"generated synthetic ratings: {data.n_samples:,} users x {data.n_features:,} "
          f"items, {data.nnz:,} ratings 1..5 from {args.groups} planted taste groups "
          f"(seed {args.seed}, {time.perf_counter() - start:.2f} s)")
    if args.k > data.n_samples:
        raise CommandError(f"-k {args.k} is more than the {data.n_samples:,} users")
    model, progress = _make_model(args, args.k)
    evaluation = evaluate_holdout(data, model, args.test_fraction, args.seed)
    if progress is not None:
        progress.close()
    _print_evaluation(evaluation, args.test_fraction, args.seed)
    held = evaluation.heldout
    shown = np.sort(np.random.RandomState(args.seed).permutation(held.values.shape[0])[:8])
    mixture = evaluation.predictions[f"Gaussian mixture (K = {args.k})"]
    biases = evaluation.predictions["user + item biases"]
    rows = [(str(held.rows[p]), str(held.cols[p]), f"{held.values[p]:g}",
             f"{mixture[p]:.2f}", f"{biases[p]:.2f}") for p in shown]
    print()
    print("a few held-out ratings, completed from the rest of each user's ratings:")
    print(_format_table(["user", "item", "rating", "mixture", "user + item biases"],
                        rows, align=[">"] * 5))
    return 0


# ---------------------------------------------------------------------------
# select
# ---------------------------------------------------------------------------

def _check_plot(path, force):
    """The matplotlib Figure class for --plot, checked before any fit."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandError("--plot needs matplotlib, which is not installed; install it "
                           "with: python -m pip install 'fastem[plot]'") from None
    suffix = Path(path).suffix.lower().lstrip(".")
    supported = Figure().canvas.get_supported_filetypes()
    if suffix not in supported:
        raise CommandError(f"--plot {path}: cannot tell the image format from the "
                           f"extension; use one of .{', .'.join(sorted(supported))}")
    _check_output(path, force)
    return Figure, suffix


def _plot_selection(path, force, figure_class, image_format, table, chosen):
    figure = figure_class(figsize=(8, 3.2), layout="constrained")
    ks = table["n_components"]
    for axes, column, title in zip(
            figure.subplots(1, 2),
            ["bic", "heldout_log_likelihood"],
            ["BIC on the fitted ratings (lower is better)",
             "held-out log-likelihood per rating (higher is better)"]):
        axes.plot(ks, table[column], "o-")
        axes.axvline(chosen, color="grey", linestyle="--", linewidth=1)
        axes.set_xscale("log", base=2)
        axes.set_xticks(ks, [str(k) for k in ks])
        axes.set_xlabel("K (components)")
        axes.set_title(title, fontsize=9)
    with _atomic_output(path, force, binary=True) as handle:
        figure.savefig(handle, format=image_format, dpi=120)


def _cmd_select(args):
    candidates = sorted(set(args.k))
    plot = _check_plot(args.plot, args.force) if args.plot else None
    start = time.perf_counter()
    ratings = _load_ratings(args.data, args.format)
    print(f"read {_describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    _check_k(candidates[-1], ratings, "--k")
    data = ratings.to_observed()
    print(f"held out {args.test_fraction:.0%} of the ratings at random (seed {args.seed}); "
          "each K is fitted on the rest")
    settings = dict(covariance_type=args.covariance, n_init=args.n_init,
                    max_iter=args.max_iter, tol=args.tol, n_threads=args.threads)
    steps = None if args.quiet else StepProgress(sys.stderr)
    rows = []
    for number, k in enumerate(candidates, 1):
        if steps is not None:
            steps.start(f"K = {k} ({number} of {len(candidates)})")
        # One call per K: the same seed draws the same split each time, so the
        # rows are those of a single call, and each can be reported as it ends.
        table, _, _ = select_n_components(data, [k], criterion="heldout",
                                          heldout_fraction=args.test_fraction,
                                          random_state=args.seed, refit=False,
                                          **settings)
        rows.append({name: values[0] for name, values in table.items()})
        if steps is not None:
            steps.done(f"K = {k}: {_count(rows[-1]['n_iter'], 'iteration')}, "
                       f"{rows[-1]['fit_time']:.2f} s")
    table = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    best_heldout = int(table["n_components"][np.argmax(table["heldout_log_likelihood"])])
    best_bic = int(table["n_components"][np.argmin(table["bic"])])
    chosen = best_heldout if args.criterion == "heldout" else best_bic
    lines = [(f"{row['n_components']}", f"{row['log_likelihood']:.10g}",
              f"{row['bic']:.10g}", f"{row['heldout_log_likelihood']:.4f}",
              f"{row['n_iter']}{'' if row['converged'] else ' (not converged)'}",
              f"{row['fit_time']:.2f}", "<- chosen" if row["n_components"] == chosen
              else "") for row in rows]
    print()
    print(_format_table(["K", "log-likelihood", "BIC", "held-out LL per rating",
                         "iterations", "seconds", ""], lines,
                        align=[">", ">", ">", ">", ">", ">", "<"]))
    print()
    if args.criterion == "heldout":
        print(f"chosen K = {chosen}: the highest held-out log-likelihood "
              f"(the lowest BIC is at K = {best_bic})")
    else:
        print(f"chosen K = {chosen}: the lowest BIC (the highest held-out "
              f"log-likelihood is at K = {best_heldout})")
    if plot is not None:
        _plot_selection(args.plot, args.force, *plot, table, chosen)
        print(f"plot written to {args.plot}")
    return 0


# ---------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------

def _cmd_bench(args):
    from ._bench import available_backends, bench_params, configurations, time_iteration
    from .datasets import make_ratings

    backends, skipped = available_backends(args.backends)
    for name, reason in skipped.items():
        _warn(f"skipping backend {name!r}: {reason}")
    if not backends:
        raise CommandError("no backend to time")
    print(f"fastem {__version__} kernel benchmark: one EM iteration (fused pass + "
          f"M-step), median of {args.repeats} after 1 warm-up")
    start = time.perf_counter()
    data = make_ratings(args.n_users, args.n_items, args.n_ratings, random_state=args.seed,
                        dtype=np.dtype(args.dtype))
    print(f"data: make_ratings({data.n_samples:,} users x {data.n_features:,} items, "
          f"{data.nnz:,} ratings, seed {args.seed}), {args.dtype}, generated in "
          f"{time.perf_counter() - start:.2f} s")
    if args.k > data.n_samples:
        raise CommandError(f"-k {args.k} is more than the {data.n_samples:,} users")
    kernels = ""
    if "cython" in backends:
        info = backend_info("cython")
        kernels = (f"; compiled kernels: {info['simd']} build, "
                   f"{'OpenMP' if info['openmp'] else 'no OpenMP'}, "
                   f"{info['max_threads']} threads available")
    print(f"model: K = {args.k}, {args.covariance}{kernels}")
    params = bench_params(data, args.k, args.covariance, args.seed)
    rows, reference = [], None
    for backend, n_threads in configurations(backends, args.threads):
        seconds, _ = time_iteration(data, params, backend, n_threads, args.repeats)
        if backend == "python":
            reference = seconds
        ns = seconds / (data.nnz * args.k) * 1e9
        speedup = f"{reference / seconds:.1f}x" if reference else "-"
        rows.append((backend, str(n_threads), f"{seconds:.4f}", f"{ns:.2f}", speedup))
    print()
    print(_format_table(["backend", "threads", "s / iteration", "ns / (rating x K)",
                         "vs python"], rows))
    return 0


# ---------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------

_PREDICT_EPILOG = """\
Pairs (the default): DATA lists (user, item) pairs, one a line, separated as
in a triples file (tab, comma, '::', ';' or spaces); a rating column, empty
or not, and further columns are ignored. The first line is a header when its
rating field is not a number, or, with no rating there, when it names neither
a known user nor a known item. OUT gets the header 'user item
predicted_rating', then one tab-separated line per pair, in the order and the
ids of DATA.

Each user's posterior comes from that user's ratings in --ratings FILE
(usually the file the model was fitted on; newer ratings work too, without a
refit). The prediction is the posterior mean of the rating, or the rating
itself when FILE holds it. A user with no rating in FILE gets the mixture
weights as posterior. An item the model does not know (not among the item
ids stored in MODEL) gets 'nan', with a warning on stderr.

--fill: DATA holds ratings (dense text with 0 = missing, or any format; see
--format) with the model's items as columns, in the model's order. OUT is
the completed dense matrix, one line per user: the observed ratings kept,
the missing ones predicted.
"""

_DESCRIPTIONS = {
    "fastem": """Fast, exact EM for Gaussian mixtures on partially observed
        rating matrices: fit, predict, evaluate and choose K from a ratings
        file.""",
    "fit": """Fit a Gaussian mixture with K components to the ratings of DATA
        by EM, print a summary (iterations, log-likelihood, BIC, time) and
        save the model to MODEL, with the user and item ids of DATA.""",
    "predict": """Predict the ratings of the (user, item) pairs of DATA with the
        model in MODEL, in the ids of DATA; or, with --fill, complete the
        rating matrix of DATA.""",
    "evaluate": """Hold out a random share of the ratings of DATA, fit the
        mixture on the rest, and report the RMSE and MAE of its predictions of
        the held-out ratings next to three baselines fitted on the same
        ratings: the global mean, the item means, and user + item biases.

        The biases are Koren's regularised baseline predictors (2010, section
        2.1): mean + b_u + b_i with b_i = sum(r - mean) / (25 + n_i), then
        b_u = sum(r - mean - b_i) / (10 + n_u), n_i and n_u counting the
        ratings of the item and of the user. An item with no rating left gets
        the global mean as item mean. No prediction is clipped. The
        log-likelihood of the held-out ratings given the rest is printed
        too.""",
    "select": """Hold out a random share of the ratings of DATA, fit one
        mixture per K on the rest, and print for each K the log-likelihood
        and BIC on the fitted ratings and the log-likelihood of the held-out
        ratings given the rest (per rating), then the chosen K.""",
    "demo": """Generate synthetic 1..5 ratings with planted taste groups and a
        realistic sparsity (fastem.datasets.make_ratings; --seed seeds the
        data too), evaluate them as 'fastem evaluate' does, and show a few
        held-out ratings with their predictions.""",
    "bench": """Time one EM iteration (the fused pass over the ratings and the
        M-step) on synthetic ratings, for each kernel backend available and
        thread count: seconds per iteration, and nanoseconds per rating and
        component. benchmarks/bench_kernels.py in the source tree does
        more.""",
}


def _add_command(commands, name, summary, parents=(), epilog=None):
    return commands.add_parser(name, parents=list(parents), help=summary,
                               description=_wrap(_DESCRIPTIONS[name]), epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser():
    """The argument parser of the ``fastem`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = _Parser(prog="fastem", description=_wrap(_DESCRIPTIONS["fastem"]),
                     epilog="Run 'fastem COMMAND --help' for the options of a command.",
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastem {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    model_options, data_options = _model_options(), _data_options()

    fit = _add_command(commands, "fit", "fit a mixture to a ratings file, save the model",
                       [data_options, model_options])
    fit.add_argument("data", metavar="DATA", help="the ratings file")
    fit.add_argument("-k", "--k", type=_positive_int, required=True, metavar="K",
                     help="number of components")
    fit.add_argument("-o", "--output", metavar="MODEL",
                     help="model file to write (default: DATA's name with .kK.npz, "
                          "in the current folder)")
    fit.add_argument("--force", action="store_true", help="replace an existing MODEL")
    fit.set_defaults(handler=_cmd_fit)

    predict = _add_command(commands, "predict",
                           "predict ratings of (user, item) pairs, or complete a matrix",
                           epilog=_PREDICT_EPILOG)
    predict.add_argument("model", metavar="MODEL", help="a model file from 'fastem fit'")
    predict.add_argument("data", metavar="DATA",
                         help="the pairs to predict (with --fill: the ratings to "
                              "complete)")
    predict.add_argument("-o", "--output", metavar="OUT", required=True,
                         help="file to write ('-': stdout)")
    predict.add_argument("--ratings", metavar="FILE",
                         help="the observed ratings the predictions condition on "
                              "(required without --fill)")
    predict.add_argument("--ratings-format", choices=rating_io.FORMATS, default=None,
                         help="format of FILE (default: from the extension, as "
                              "--format)")
    predict.add_argument("--fill", action="store_true",
                         help="write the completed matrix of the ratings in DATA")
    predict.add_argument("--format", choices=rating_io.FORMATS, default=None,
                         help="with --fill: format of DATA (default: from the "
                              "extension, as for 'fastem fit')")
    predict.add_argument("--threads", type=_thread_count, default=None, metavar="T",
                         help="threads of the compiled kernels (default: every core)")
    predict.add_argument("--force", action="store_true", help="replace an existing OUT")
    predict.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    predict.set_defaults(handler=_cmd_predict)

    evaluate = _add_command(commands, "evaluate",
                            "score held-out ratings, next to baselines",
                            [data_options, model_options])
    evaluate.add_argument("data", metavar="DATA", help="the ratings file")
    evaluate.add_argument("-k", "--k", type=_positive_int, required=True, metavar="K",
                          help="number of components")
    evaluate.add_argument("--test-fraction", type=_fraction, default=0.1, metavar="F",
                          help="share of the ratings held out, each independently "
                               "(default: %(default)s)")
    evaluate.set_defaults(handler=_cmd_evaluate)

    select = _add_command(commands, "select",
                          "choose K: BIC and held-out log-likelihood per K",
                          [data_options, model_options])
    select.add_argument("data", metavar="DATA", help="the ratings file")
    select.add_argument("-k", "--k", type=_positive_int, nargs="+",
                        default=DEFAULT_CANDIDATES, metavar="K",
                        help="the numbers of components to try (default: 1 2 4 8 16)")
    select.add_argument("--criterion", choices=["heldout", "bic"], default="heldout",
                        help="heldout: the highest held-out log-likelihood; bic: the "
                             "lowest BIC (default: %(default)s)")
    select.add_argument("--test-fraction", type=_fraction, default=0.1, metavar="F",
                        help="share of the ratings held out (default: %(default)s)")
    select.add_argument("--plot", metavar="FILE.png",
                        help="draw both curves to this image (needs matplotlib: "
                             "pip install 'fastem[plot]')")
    select.add_argument("--force", action="store_true", help="replace an existing plot")
    select.set_defaults(handler=_cmd_select)

    demo = _add_command(commands, "demo", "evaluate on built-in synthetic ratings",
                        [model_options])
    demo.add_argument("--n-users", type=_positive_int, default=20_000, metavar="N",
                      help="users (default: %(default)s)")
    demo.add_argument("--n-items", type=_positive_int, default=2_000, metavar="N",
                      help="items (default: %(default)s)")
    demo.add_argument("--n-ratings", type=_positive_int, default=1_000_000, metavar="N",
                      help="ratings (default: %(default)s)")
    demo.add_argument("--groups", type=_positive_int, default=12, metavar="G",
                      help="planted taste groups (default: %(default)s)")
    demo.add_argument("-k", "--k", type=_positive_int, default=12, metavar="K",
                      help="number of components (default: %(default)s)")
    demo.add_argument("--test-fraction", type=_fraction, default=0.1, metavar="F",
                      help="share of the ratings held out (default: %(default)s)")
    demo.set_defaults(handler=_cmd_demo)

    bench = _add_command(commands, "bench",
                         "time one EM iteration per backend and thread count")
    bench.add_argument("--n-users", type=_positive_int, default=100_000, metavar="N",
                       help="users (default: %(default)s)")
    bench.add_argument("--n-items", type=_positive_int, default=5_000, metavar="N",
                       help="items (default: %(default)s)")
    bench.add_argument("--n-ratings", type=_positive_int, default=2_000_000, metavar="N",
                       help="ratings (default: %(default)s)")
    bench.add_argument("-k", "--k", type=_positive_int, default=12, metavar="K",
                       help="number of components (default: %(default)s)")
    bench.add_argument("--covariance", choices=["spherical", "diag"], default="spherical",
                       help="default: %(default)s")
    bench.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="dtype of the ratings (default: %(default)s)")
    bench.add_argument("--backends", nargs="+", choices=["python", "cython"],
                       default=["python", "cython"],
                       help="backends to time (default: both; cython only if it "
                            "imports)")
    bench.add_argument("--threads", type=_thread_count, nargs="+", default=None,
                       metavar="T", help="thread counts of the compiled backend "
                                         "(default: 1 and every core)")
    bench.add_argument("--repeats", type=_positive_int, default=3, metavar="N",
                       help="timed iterations per configuration (default: %(default)s)")
    bench.add_argument("--seed", type=_seed, default=0, metavar="S",
                       help="seed of the data and initial parameters (default: "
                            "%(default)s)")
    bench.set_defaults(handler=_cmd_bench)
    return parser


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

def _show_warning(message, category, filename, lineno, file=None, line=None):
    _warn(str(message))


def _error_message(exc):
    """One line describing ``exc`` for the user."""
    if isinstance(exc, FileNotFoundError) and exc.filename is not None:
        return f"{exc.filename}: no such file or directory"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, MemoryError):
        return "out of memory; try smaller data, float32 ratings or a smaller K"
    if isinstance(exc, (CommandError, ModelFileError, ValueError, TypeError, OSError)):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def main(argv=None):
    """Run the ``fastem`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 after an error, 2 for a bad command
        line, 130 when interrupted, 141 when stdout was closed early.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.handler(args)
        except BrokenPipeError:
            # The reader of stdout has gone (`fastem ... | head`): stop quietly,
            # and keep Python from failing again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        except KeyboardInterrupt:
            end_line()
            print("fastem: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - the user gets one line, never a traceback
            end_line()
            message = " ".join(_error_message(exc).split())
            print(f"fastem: error: {message}", file=sys.stderr)
            return EXIT_ERROR
