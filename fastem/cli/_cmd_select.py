"""``fastem select``: choose K by the BIC and the held-out log-likelihood of each K."""

import sys
import time
from pathlib import Path

import numpy as np

from .. import select_n_components
from ._format import count, format_table
from ._output import CommandError, atomic_output, check_output
from ._progress import StepProgress
from ._shared import check_k, describe, load_ratings

__all__ = ["run"]


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
    check_output(path, force)
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
    with atomic_output(path, force, binary=True) as handle:
        figure.savefig(handle, format=image_format, dpi=120)


def run(args):
    """Run ``fastem select`` with the parsed ``args``; the exit status."""
    candidates = sorted(set(args.k))
    plot = _check_plot(args.plot, args.force) if args.plot else None
    start = time.perf_counter()
    ratings = load_ratings(args.data, args.format, args.duplicates)
    print(f"read {describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    check_k(candidates[-1], ratings, "--k")
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
            steps.done(f"K = {k}: {count(rows[-1]['n_iter'], 'iteration')}, "
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
    print(format_table(["K", "log-likelihood", "BIC", "held-out LL per rating",
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
