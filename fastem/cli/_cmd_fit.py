"""``fastem fit``: fit a mixture to a ratings file and save the model with its ids."""

import time
from pathlib import Path

from ._output import atomic_output, check_output
from ._shared import check_k, describe, fit_line, load_ratings, make_model

__all__ = ["run"]


def run(args):
    """Run ``fastem fit`` with the parsed ``args``; the exit status."""
    output = args.output or f"{Path(args.data).stem}.k{args.k}.npz"
    check_output(output, args.force)
    start = time.perf_counter()
    ratings = load_ratings(args.data, args.format)
    print(f"read {describe(args.data, ratings)} ({time.perf_counter() - start:.2f} s)")
    check_k(args.k, ratings)
    data = ratings.to_observed()
    model, progress = make_model(args, args.k)
    start = time.perf_counter()
    model.fit(data, progress=progress)
    seconds = time.perf_counter() - start
    if progress is not None:
        progress.close()
    bic = model.bic(data)
    print(fit_line(model, seconds))
    print(f"  log-likelihood  {model.log_likelihood_:.10g} "
          f"({model.log_likelihood_ / ratings.nnz:.4f} per rating)")
    print(f"  BIC             {bic:.10g} (lower is better)")
    with atomic_output(output, args.force, binary=True) as handle:
        model.save(handle, row_labels=ratings.row_labels, column_labels=ratings.col_labels)
    print(f"model written to {output}, with the ids of the {ratings.shape[0]:,} users "
          f"and {ratings.shape[1]:,} items")
    return 0
