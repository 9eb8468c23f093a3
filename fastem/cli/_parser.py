"""The command line of ``fastem``: its argument parser, option groups and argument types.

The argument types parse the text themselves and check the value by the
rules of :mod:`fastem._validation`, so that an option and the setting it
gives obey one rule with one wording.
"""

import argparse
import textwrap

from .. import __version__
from .. import io as rating_io
from .._validation import (check_fraction, check_max_iter, check_n_components, check_n_init,
                           check_n_threads, check_random_state, check_tol)
from ._output import EXIT_USAGE

__all__ = ["build_parser", "parse_arguments", "DEFAULT_CANDIDATES"]

DEFAULT_CANDIDATES = [1, 2, 4, 8, 16]


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line in fastem's form.

    ``commands`` maps each command's name to its parser.
    """

    commands = None

    def error(self, message):
        self.exit(EXIT_USAGE, f"fastem: error: {message} (see '{self.prog} --help')\n")


# ---------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------

def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _checked(parse, rule):
    """The argument type that parses the text with ``parse`` and checks it by ``rule``.

    The rule's ValueError becomes argparse's usage error, with its message.
    """
    def convert(text):
        value = parse(text)
        try:
            return rule(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


def _count_of(name):
    """The argument type of a count >= 1 (users, items, ...), named ``name``."""
    return _checked(_integer, lambda value: check_n_components(value, name))


_components = _checked(_integer, check_n_components)
_n_init = _checked(_integer, check_n_init)
_max_iter = _checked(_integer, check_max_iter)
_tolerance = _checked(_number, check_tol)
_threads = _checked(_integer, check_n_threads)
_seed = _checked(_integer, check_random_state)
_fraction = _checked(_number, lambda value: check_fraction(value, "test_fraction"))
_users, _items, _ratings = (_count_of(name) for name in ("n_users", "n_items", "n_ratings"))
_groups, _repeats = _count_of("n_groups"), _count_of("repeats")


def _wrap(text):
    """A help description as paragraphs wrapped for a terminal."""
    return "\n\n".join(textwrap.fill(" ".join(part.split()), 79)
                       for part in text.split("\n\n"))


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
    group.add_argument("--n-init", type=_n_init, default=1, metavar="N",
                       help="EM restarts; the best log-likelihood is kept "
                            "(default: %(default)s)")
    group.add_argument("--seed", type=_seed, default=0, metavar="S",
                       help="seed of the initialisation (and of the hold-out split); "
                            "restart r uses seed S + r (default: %(default)s)")
    group.add_argument("--max-iter", type=_max_iter, default=1000, metavar="N",
                       help="EM iterations per restart (default: %(default)s)")
    group.add_argument("--tol", type=_tolerance, default=1e-6,
                       help="stop when the log-likelihood rises by less than TOL times "
                            "its size (default: %(default)s)")
    group.add_argument("--threads", type=_threads, default=None, metavar="T",
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
    parser.commands = commands.choices
    model_options, data_options = _model_options(), _data_options()

    fit = _add_command(commands, "fit", "fit a mixture to a ratings file, save the model",
                       [data_options, model_options])
    fit.add_argument("data", metavar="DATA", help="the ratings file")
    fit.add_argument("-k", "--k", type=_components, required=True, metavar="K",
                     help="number of components")
    fit.add_argument("-o", "--output", metavar="MODEL",
                     help="model file to write (default: DATA's name with .kK.npz, "
                          "in the current folder)")
    fit.add_argument("--force", action="store_true", help="replace an existing MODEL")

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
    predict.add_argument("--threads", type=_threads, default=None, metavar="T",
                         help="threads of the compiled kernels (default: every core)")
    predict.add_argument("--force", action="store_true", help="replace an existing OUT")
    predict.add_argument("-q", "--quiet", action="store_true", help="no summary line")

    evaluate = _add_command(commands, "evaluate",
                            "score held-out ratings, next to baselines",
                            [data_options, model_options])
    evaluate.add_argument("data", metavar="DATA", help="the ratings file")
    evaluate.add_argument("-k", "--k", type=_components, required=True, metavar="K",
                          help="number of components")
    evaluate.add_argument("--test-fraction", type=_fraction, default=0.1, metavar="F",
                          help="share of the ratings held out, each independently "
                               "(default: %(default)s)")

    select = _add_command(commands, "select",
                          "choose K: BIC and held-out log-likelihood per K",
                          [data_options, model_options])
    select.add_argument("data", metavar="DATA", help="the ratings file")
    select.add_argument("-k", "--k", type=_components, nargs="+",
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

    demo = _add_command(commands, "demo", "evaluate on built-in synthetic ratings",
                        [model_options])
    demo.add_argument("--n-users", type=_users, default=20_000, metavar="N",
                      help="users (default: %(default)s)")
    demo.add_argument("--n-items", type=_items, default=2_000, metavar="N",
                      help="items (default: %(default)s)")
    demo.add_argument("--n-ratings", type=_ratings, default=1_000_000, metavar="N",
                      help="ratings (default: %(default)s)")
    demo.add_argument("--groups", type=_groups, default=12, metavar="G",
                      help="planted taste groups (default: %(default)s)")
    demo.add_argument("-k", "--k", type=_components, default=12, metavar="K",
                      help="number of components (default: %(default)s)")
    demo.add_argument("--test-fraction", type=_fraction, default=0.1, metavar="F",
                      help="share of the ratings held out (default: %(default)s)")

    bench = _add_command(commands, "bench",
                         "time one EM iteration per backend and thread count")
    bench.add_argument("--n-users", type=_users, default=100_000, metavar="N",
                       help="users (default: %(default)s)")
    bench.add_argument("--n-items", type=_items, default=5_000, metavar="N",
                       help="items (default: %(default)s)")
    bench.add_argument("--n-ratings", type=_ratings, default=2_000_000, metavar="N",
                       help="ratings (default: %(default)s)")
    bench.add_argument("-k", "--k", type=_components, default=12, metavar="K",
                       help="number of components (default: %(default)s)")
    bench.add_argument("--covariance", choices=["spherical", "diag"], default="spherical",
                       help="default: %(default)s")
    bench.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="dtype of the ratings (default: %(default)s)")
    bench.add_argument("--backends", nargs="+", choices=["python", "cython"],
                       default=["python", "cython"],
                       help="backends to time (default: both; cython only if it "
                            "imports)")
    bench.add_argument("--threads", type=_threads, nargs="+", default=None,
                       metavar="T", help="thread counts of the compiled backend "
                                         "(default: 1 and every core)")
    bench.add_argument("--repeats", type=_repeats, default=3, metavar="N",
                       help="timed iterations per configuration (default: %(default)s)")
    bench.add_argument("--seed", type=_seed, default=0, metavar="S",
                       help="seed of the data and initial parameters (default: "
                            "%(default)s)")
    return parser


def parse_arguments(parser, argv):
    """The arguments of ``argv``, with the checks that involve two options.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        From :func:`build_parser`.
    argv : list of str

    Returns
    -------
    argparse.Namespace
        ``command`` is None when no command was given.

    Raises
    ------
    SystemExit
        For a bad command line (status 2, one line on stderr), and after
        ``--help`` or ``--version`` (status 0).
    """
    args = parser.parse_args(argv)
    if args.command is not None and hasattr(args, "n_init"):
        # Restart r of a fit uses the seed S + r.
        try:
            check_random_state(args.seed, args.n_init)
        except ValueError as exc:
            parser.commands[args.command].error(f"argument --seed: {exc}")
    return args
