"""MixtureImputer against the column means on scikit-learn's tabular data sets.

Method: each data set shipped with scikit-learn (iris, wine, breast cancer,
diabetes, digits; no download) has a share of its entries hidden at random
(``--missing``), the imputer is fitted on what is left and fills the hidden
entries, and the error is the RMSE over the hidden entries in units of each
column's standard deviation. The table gives, per data set and share, the
imputer's error divided by that of the column means (below 1: better),
averaged over ``--seeds`` masks, for the imputer's defaults and the variants
given with ``--variants``. Needs scikit-learn (for the data sets only).

Example::

    PYTHONPATH=. python benchmarks/bench_imputer.py --markdown benchmarks/RESULTS.md
"""

import argparse
import warnings
from pathlib import Path

import numpy as np

from _common import append_markdown, markdown_table, print_header
from fastem import MixtureImputer

DATA_SETS = ("iris", "wine", "breast_cancer", "diabetes", "digits")
# name: settings given to MixtureImputer on top of random_state.
VARIANTS = {
    "defaults (K = 4, diag, floor 1e-6)": {},
    "K = 8": {"n_components": 8},
    "K = 2": {"n_components": 2},
    "spherical, floor 0.25": {"covariance_type": "spherical", "min_variance": 0.25},
    "spherical, floor 1e-6": {"covariance_type": "spherical"},
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--missing", type=float, nargs="+", default=[0.2, 0.5],
                        help="shares of the entries hidden (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help="masks per share")
    parser.add_argument("--markdown", type=Path, metavar="FILE",
                        help="append the table to this Markdown file")
    return parser.parse_args(argv)


def relative_errors(X, share, seed):
    """The imputers' error over the column means' on one random mask."""
    hidden = np.random.RandomState(seed).rand(*X.shape) < share
    observed = np.where(hidden, np.nan, X)
    means = np.nanmean(observed, axis=0)
    spread = np.nanstd(observed, axis=0)
    spread[spread == 0] = 1.0

    def error(filled):
        return np.sqrt(np.mean(((filled - X) / spread)[hidden] ** 2))

    baseline = error(np.where(hidden, means, X))
    return {name: error(MixtureImputer(random_state=seed, **settings)
                        .fit_transform(observed)) / baseline
            for name, settings in VARIANTS.items()}


def main(argv=None):
    args = parse_args(argv)
    from sklearn import datasets

    print_header("MixtureImputer against the column means")
    rows = []
    for name in DATA_SETS:
        X = getattr(datasets, f"load_{name}")().data.astype(np.float64)
        for share in args.missing:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning of small data
                runs = [relative_errors(X, share, seed) for seed in range(args.seeds)]
            rows.append([f"{name} {X.shape[0]} x {X.shape[1]}", f"{share:.0%}"]
                        + [f"{np.mean([run[v] for run in runs]):.3f}" for v in VARIANTS])
    table = markdown_table(["data", "hidden"] + list(VARIANTS), rows)
    print(table)
    if args.markdown:
        append_markdown(args.markdown, "bench_imputer.py", table)


if __name__ == "__main__":
    main()
