"""The command line of ``fastem``: its argument parser, option groups and argument types.

The argument types parse the text themselves and check the value by the
rules of :mod:`fastem._validation`, so that an option and the setting it
gives obey one rule with one wording.
"""

import argparse
import textwrap

from .. import __version__
from .. import io as rating_io
from ..recommender import SIDES
from .._validation import (check_fraction, check_max_iter, check_n_components, check_n_init,
                           check_n_threads, check_random_state, check_tol)
from ._output import EXIT_USAGE

__all__ = ["build_parser", "parse_arguments", "DEFAULT_CANDIDATES", "MODELS",
           "MIXTURE_DEFAULTS", "RECOMMENDER_DEFAULTS", "DEMO_SIZE"]

DEFAULT_CANDIDATES = [1, 2, 4, 8, 16]
#: The models of ``fastem fit --model``, the default first.
MODELS = ("recommender", "mixture")
#: The settings of a plain mixture fit, when not given.
MIXTURE_DEFAULTS = {"covariance": "spherical", "n_init": 1, "max_iter": 1000, "tol": 1e-6}
#: The settings of a recommender fit, when not given (the Recommender's own).
RECOMMENDER_DEFAULTS = {"k": 8, "restarts": 10, "sides": "both"}
# The restarts of the recommender that evaluate and demo fit (seeds S .. S + 9).
_EVALUATED_RESTARTS = RECOMMENDER_DEFAULTS["restarts"]
#: The size of the synthetic ratings of ``fastem demo``.
DEMO_SIZE = {"n_users": 20_000, "n_items": 2_000, "n_ratings": 1_000_000}


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
_restarts, _n = _count_of("n_restarts"), _count_of("n")


def _wrap(text):
    """A help description as paragraphs wrapped for a terminal."""
    return "\n\n".join(textwrap.fill(" ".join(part.split()), 79)
                       for part in text.split("\n\n"))


# ---------------------------------------------------------------------------
# options shared by the commands
# ---------------------------------------------------------------------------

def _add_mixture_options(group, defaults=True):
    """--covariance, --n-init, --max-iter and --tol; None defaults when not ``defaults``."""
    def default(name):
        return MIXTURE_DEFAULTS[name] if defaults else None
    group.add_argument("--covariance", choices=["spherical", "diag"],
                       default=default("covariance"),
                       help="one variance per component (spherical, the course's "
                            "model) or per component and item (diag); "
                            "default: spherical")
    group.add_argument("--n-init", type=_n_init, default=default("n_init"), metavar="N",
                       help="EM restarts; the best log-likelihood is kept (default: 1)")
    group.add_argument("--max-iter", type=_max_iter, default=default("max_iter"),
                       metavar="N", help="EM iterations per restart (default: 1000)")
    group.add_argument("--tol", type=_tolerance, default=default("tol"),
                       help="stop when the log-likelihood rises by less than TOL times "
                            "its size (default: 1e-06)")


def _add_run_options(group, split=True):
    """--seed, --threads and --quiet; ``split``: the seed draws a hold-out split too."""
    also = " (and of the hold-out split)" if split else ""
    group.add_argument("--seed", type=_seed, default=0, metavar="S",
                       help=f"seed of the initialisation{also}; restart r uses seed "
                            "S + r (default: %(default)s)")
    group.add_argument("--threads", type=_threads, default=None, metavar="T",
                       help="threads of the compiled kernels (default: every core; "
                            "OMP_NUM_THREADS)")
    group.add_argument("-q", "--quiet", action="store_true",
                       help="no progress display on stderr")


def _model_options(beside_recommender=False):
    """The options of a plain mixture fit; ``beside_recommender``: in their own group,
    apart from --seed, --threads and --quiet, which the recommender shares."""
    parent = _Parser(add_help=False)
    if not beside_recommender:
        group = parent.add_argument_group("model")
        _add_mixture_options(group)
        _add_run_options(group)
        return parent
    _add_mixture_options(parent.add_argument_group(
        "plain mixture (the recommender keeps its defaults)"))
    _add_run_options(parent.add_argument_group("both fits"))
    return parent


def _fit_options():
    """The options of ``fastem fit``: the model, then each model's own settings.

    The settings of one model are refused with the other (parse_arguments),
    so their defaults are None here and filled in there.
    """
    parent = _Parser(add_help=False)
    group = parent.add_argument_group("model")
    group.add_argument("--model", choices=MODELS, default=MODELS[0],
                       help="recommender: user and item offsets and bias-centred "
                            "mixtures of the users and of the items (fastem."
                            "Recommender); mixture: one Gaussian mixture of the users "
                            "(fastem.GaussianMixture); default: %(default)s")
    group.add_argument("-k", "--k", type=_components, default=None, metavar="K",
                       help="number of components: of each side's mixture of the "
                            "recommender (default: 8), or of the mixture (required "
                            "with --model mixture)")
    _add_run_options(group, split=False)
    recommender = parent.add_argument_group("recommender (--model recommender)")
    recommender.add_argument("--restarts", type=_restarts, default=None, metavar="N",
                             help="fits of each side from seeds S .. S + N - 1, whose "
                                  "predictions are averaged (default: 10)")
    recommender.add_argument("--sides", choices=SIDES, default=None,
                             help="the mixtures to fit: of the users and of the items "
                                  "(both), or one of them (default: both)")
    _add_mixture_options(parent.add_argument_group("plain mixture (--model mixture)"),
                         defaults=False)
    return parent


def _data_options():
    parent = _Parser(add_help=False)
    parent.add_argument("--format", choices=rating_io.FORMATS, default=None,
                        help="format of DATA (default: from the extension: .csv .tsv "
                             ".dat .data triples, .mtx Matrix Market, .npz scipy "
                             "sparse, .txt dense or triples by its first line)")
    _add_duplicates(parent)
    return parent


def _add_duplicates(command):
    command.add_argument("--duplicates", choices=rating_io.DUPLICATES, default="error",
                         help="a (user, item) pair on several lines: refuse the file "
                              "(error) or keep its last rating, with a warning (last); "
                              "default: %(default)s")


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

A recommender model (from 'fastem fit'): the prediction is the mean rating
plus the user's and the item's offsets plus the corrections of the users'
and the items' mixtures, clipped to the range of the training ratings. The
users the model was fitted on keep their offsets and posteriors; a user of
DATA the model does not know is folded in from their ratings in --ratings
FILE (an offset and posteriors, without a refit). A user with no rating there
either gets no offset and the mixture weights as posterior; an item the model
does not know gets no offset and no correction. Every pair gets a number, and
stderr tells how many users and items of DATA the model did not know.

A mixture model (from 'fastem fit --model mixture'): each user's posterior
comes from that user's ratings in FILE (usually the file the model was fitted
on; newer ratings work too, without a refit). The prediction is the posterior
mean of the rating, or the rating itself when FILE holds it. A user with no
rating in FILE gets the mixture weights as posterior. An item the model does
not know (not among the item ids stored in MODEL) gets 'nan', with a warning
on stderr.

--fill (mixture models): DATA holds ratings (dense text with 0 = missing, or
any format; see --format) with the model's items as columns, in the model's
order. OUT is the completed dense matrix, one line per user: the observed
ratings kept, the missing ones predicted.
"""

_RECOMMEND_EPILOG = """\
--users USERS: one user id a line, as in FILE (integer ids are matched as
numbers: 017 is 17). Blank lines are skipped, a user listed twice is taken
once, and the first line is a header when it names neither a user of FILE nor
a user of the model. Without --users: every user of FILE.

For each user, the N items of highest predicted rating among the items of the
model that the user has not rated in FILE, best first. The users of FILE the
model does not know are folded in from their ratings there first (an offset
and posteriors, without a refit); a user with no rating in FILE whom the model
does not know either gets the items of the mean user, with a warning. OUT
gets the header 'user rank item predicted_rating', then N tab-separated lines
per user, rank 1 first (fewer when fewer items are left to recommend).
"""

_DESCRIPTIONS = {
    "fastem": """Fast, exact EM for Gaussian mixtures on partially observed
        rating matrices: fit, predict, recommend, evaluate and choose K from a
        ratings file.""",
    "fit": """Fit a model to the ratings of DATA, print a summary and save the
        model to MODEL, with the user and item ids of DATA.

        The default model is the recommender (fastem.Recommender): regularised
        user and item offsets, then Gaussian mixtures of K components of the
        users and of the items fitted to what the offsets leave, each from
        --restarts seeds, their predictions averaged. Its summary gives the
        size of the data, the time and the mean squared residual after the
        offsets.

        --model mixture fits one Gaussian mixture of the users with K
        components by EM (fastem.GaussianMixture) and prints its iterations,
        log-likelihood, BIC and time.""",
    "predict": """Predict the ratings of the (user, item) pairs of DATA with the
        model in MODEL (a recommender or a mixture), in the ids of DATA; or,
        with --fill, complete the rating matrix of DATA (mixture models).""",
    "recommend": """Recommend to users the N items of highest predicted rating
        that they have not rated in --ratings FILE, with a recommender model
        from 'fastem fit'.""",
    "evaluate": """Hold out a random share of the ratings of DATA, fit the
        recommender (fastem.Recommender with its defaults, seeded by --seed)
        and a plain Gaussian mixture of K components on the rest, and report
        the RMSE and MAE of their predictions of the held-out ratings next to
        three baselines fitted on the same ratings: the global mean, the item
        means, and user + item biases.

        The biases are Koren's regularised baseline predictors (2010, section
        2.1): mean + b_u + b_i with b_i = sum(r - mean) / (25 + n_i), then
        b_u = sum(r - mean - b_i) / (10 + n_u), n_i and n_u counting the
        ratings of the item and of the user. An item with no rating left gets
        the global mean as item mean. The recommender clips its predictions
        to the range of the ratings it was fitted on; no other prediction is
        clipped. The log-likelihood of the held-out ratings given the rest,
        under the plain mixture, is printed too.""",
    "select": """Hold out a random share of the ratings of DATA, fit one
        mixture per K on the rest, and print for each K the log-likelihood
        and BIC on the fitted ratings and the log-likelihood of the held-out
        ratings given the rest (per rating), then the chosen K.""",
    "demo": """Generate synthetic 1..5 ratings with user and item offsets, a
        few taste groups and a long tail of rarely rated items
        (fastem.datasets.make_ratings; --seed seeds the data too), evaluate
        them as 'fastem evaluate' does, rank the predictors, and show a few
        held-out ratings with the predictions of the recommender and of the
        biases.""",
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


def _add_ratings_file(command, text, required=False):
    command.add_argument("--ratings", metavar="FILE", required=required, help=text)
    command.add_argument("--ratings-format", choices=rating_io.FORMATS, default=None,
                         help="format of FILE (default: from the extension: .csv .tsv "
                              ".dat .data triples, .mtx Matrix Market, .npz scipy "
                              "sparse, .txt dense or triples by its first line)")
    _add_duplicates(command)


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
    data_options = _data_options()

    fit = _add_command(commands, "fit", "fit a recommender (or a mixture) to a ratings "
                       "file, save the model", [data_options, _fit_options()])
    fit.add_argument("data", metavar="DATA", help="the ratings file")
    fit.add_argument("-o", "--output", metavar="MODEL",
                     help="model file to write (default: DATA's name with "
                          ".recommender.npz, or .kK.npz for a mixture, in the current "
                          "folder)")
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
    _add_ratings_file(predict, "the observed ratings the predictions condition on "
                               "(required without --fill)")
    predict.add_argument("--fill", action="store_true",
                         help="write the completed matrix of the ratings in DATA")
    predict.add_argument("--format", choices=rating_io.FORMATS, default=None,
                         help="with --fill: format of DATA (default: from the "
                              "extension, as for 'fastem fit')")
    predict.add_argument("--threads", type=_threads, default=None, metavar="T",
                         help="threads of the compiled kernels (default: every core)")
    predict.add_argument("--force", action="store_true", help="replace an existing OUT")
    predict.add_argument("-q", "--quiet", action="store_true", help="no summary line")

    recommend = _add_command(commands, "recommend",
                             "recommend unrated items to users, with a recommender",
                             epilog=_RECOMMEND_EPILOG)
    recommend.add_argument("model", metavar="MODEL",
                           help="a recommender model file from 'fastem fit'")
    _add_ratings_file(recommend, "the users' ratings: what they have rated is never "
                                 "recommended, and users the model does not know are "
                                 "folded in from them", required=True)
    recommend.add_argument("-n", type=_n, default=10, metavar="N",
                           help="items per user (default: %(default)s)")
    recommend.add_argument("--users", metavar="USERS",
                           help="file of the users to recommend to, one id a line "
                                "(default: every user of FILE)")
    recommend.add_argument("-o", "--output", metavar="OUT", required=True,
                           help="file to write ('-': stdout)")
    recommend.add_argument("--threads", type=_threads, default=None, metavar="T",
                           help="threads of the compiled kernels (default: every "
                                "core)")
    recommend.add_argument("--force", action="store_true",
                           help="replace an existing OUT")
    recommend.add_argument("-q", "--quiet", action="store_true", help="no summary line")

    evaluate = _add_command(commands, "evaluate",
                            "score held-out ratings: the recommender, a mixture and "
                            "baselines", [data_options, _model_options(True)])
    evaluate.add_argument("data", metavar="DATA", help="the ratings file")
    evaluate.add_argument("-k", "--k", type=_components, default=8, metavar="K",
                          help="components of the plain mixture (default: %(default)s, the recommender's)")
    evaluate.add_argument("--test-fraction", type=_fraction, default=0.1, metavar="F",
                          help="share of the ratings held out, each independently "
                               "(default: %(default)s)")

    select = _add_command(commands, "select",
                          "choose K: BIC and held-out log-likelihood per K",
                          [data_options, _model_options()])
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
                        [_model_options(True)])
    demo.add_argument("--n-users", type=_users, default=DEMO_SIZE["n_users"], metavar="N",
                      help="users (default: %(default)s)")
    demo.add_argument("--n-items", type=_items, default=DEMO_SIZE["n_items"], metavar="N",
                      help="items (default: %(default)s)")
    demo.add_argument("--n-ratings", type=_ratings, default=DEMO_SIZE["n_ratings"],
                      metavar="N", help="ratings (default: %(default)s)")
    demo.add_argument("--groups", type=_groups, default=4, metavar="G",
                      help="planted taste groups (default: %(default)s)")
    demo.add_argument("-k", "--k", type=_components, default=8, metavar="K",
                      help="components of the plain mixture (default: %(default)s)")
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


def _check_fit_model(command, args):
    """Refuse the settings of the other model in ``fastem fit``, then fill the defaults."""
    mixture = args.model == "mixture"
    if mixture and args.k is None:
        command.error("argument -k/--k: --model mixture needs the number of components")
    own, other = ((MIXTURE_DEFAULTS, RECOMMENDER_DEFAULTS) if mixture
                  else (RECOMMENDER_DEFAULTS, MIXTURE_DEFAULTS))
    for name in other:
        if name != "k" and getattr(args, name) is not None:
            option = "--" + name.replace("_", "-")
            command.error(f"argument {option}: applies to --model "
                          f"{'recommender' if mixture else 'mixture'} only")
    for name, value in own.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


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
        ``command`` is None when no command was given. For ``fit``, the
        settings of the model not fitted are None.

    Raises
    ------
    SystemExit
        For a bad command line (status 2, one line on stderr), and after
        ``--help`` or ``--version`` (status 0).
    """
    args = parser.parse_args(argv)
    if args.command is None:
        return args
    command = parser.commands[args.command]
    if args.command == "fit":
        _check_fit_model(command, args)
    # Restart r of a fit uses the seed S + r: the plain mixture's --n-init
    # restarts, the recommender's (--restarts, or 10 in evaluate and demo).
    restarts = []
    if getattr(args, "n_init", None) is not None:
        restarts.append(args.n_init)
    if getattr(args, "restarts", None) is not None:
        restarts.append(args.restarts)
    if args.command in ("evaluate", "demo"):
        restarts.append(_EVALUATED_RESTARTS)
    if restarts:
        try:
            check_random_state(args.seed, max(restarts))
        except ValueError as exc:
            command.error(f"argument --seed: {exc}")
    return args
