"""The course's ``common`` module: the mixture type, init, rmse, bic, plot."""

import numbers
from typing import NamedTuple, Tuple

import numpy as np
import scipy.sparse as sp

__all__ = ["GaussianMixture", "init", "rmse", "bic", "plot"]


class GaussianMixture(NamedTuple):
    """Spherical Gaussian mixture: ``mu`` (K, d), ``var`` (K,), ``p`` (K,)."""

    mu: np.ndarray
    var: np.ndarray
    p: np.ndarray


def init(X: np.ndarray, K: int, seed: int = 0) -> Tuple[GaussianMixture, np.ndarray]:
    """Initialise a mixture from ``K`` random rows of ``X`` (the course's rule).

    Uses NumPy's legacy global random state exactly as the course does, so the
    same seed gives the same mixture digit for digit.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, with missing entries (0 in the course's files) taken as they are.
    K : int
        Number of components, 1 <= K <= n.
    seed : int, default=0
        Seed of ``np.random.seed``.

    Returns
    -------
    mixture : GaussianMixture
        Means = the chosen rows; var[j] = mean over all entries of (X - mu_j)^2;
        p = 1/K.
    post : ndarray of shape (n, K)
        1/K everywhere.
    """
    X = _dense(X)
    n, _ = X.shape
    if isinstance(K, bool) or not isinstance(K, numbers.Integral) or not 1 <= K <= n:
        raise ValueError(f"K must be an int between 1 and the number of rows ({n}), "
                         f"got {K!r}")
    np.random.seed(seed)
    p = np.ones(K) / K
    mu = X[np.random.choice(n, K, replace=False)]
    var = np.zeros(K)
    for j in range(K):
        var[j] = ((X - mu[j]) ** 2).mean()
    post = np.ones((n, K)) / K
    return GaussianMixture(mu, var, p), post


def _dense(X, name="X"):
    """``X`` as a 2-D array of finite numbers (0, not NaN, marks a missing entry)."""
    if sp.issparse(X):
        raise TypeError(f"the course's functions take dense arrays; pass {name}.toarray()")
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got {X.shape}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} must be finite: the course marks a missing entry with "
                         "0, not NaN")
    return X


def rmse(X: np.ndarray, Y: np.ndarray) -> float:
    """Root mean squared difference over all entries.

    Parameters
    ----------
    X, Y : ndarray of shape (n, d)
        Two matrices of the same shape.

    Returns
    -------
    float
    """
    X, Y = _dense(X), _dense(Y, "Y")
    if X.shape != Y.shape:
        raise ValueError(f"X and Y must have the same shape, got {X.shape} and {Y.shape}")
    return np.sqrt(np.mean((X - Y) ** 2))


def bic(X: np.ndarray, mixture: GaussianMixture, log_likelihood: float) -> float:
    """Bayesian information criterion, course convention (higher is better).

    ``log_likelihood - free_parameters / 2 * ln(n)`` with K*d + K + (K - 1)
    free parameters for the spherical model.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        The data (only its shape is used).
    mixture : GaussianMixture
        The fitted mixture.
    log_likelihood : float
        Its log-likelihood on ``X``.

    Returns
    -------
    float
    """
    shape = np.shape(X)
    if len(shape) != 2:
        raise ValueError(f"X must be 2-D, got shape {shape}")
    n, d = shape
    K = np.shape(mixture.mu)[0]
    free_parameters = K * d + K + (K - 1)
    return log_likelihood - 0.5 * free_parameters * np.log(n)


def plot(X: np.ndarray, mixture: GaussianMixture, post: np.ndarray, title: str):
    """Plot 2-D data coloured by their soft counts (needs matplotlib).

    Parameters
    ----------
    X : ndarray of shape (n, 2)
        The points.
    mixture : GaussianMixture
        Its components are drawn as circles of one standard deviation.
    post : ndarray of shape (n, K)
        Soft counts: each point is drawn as arcs in the components' colours.
    title : str
        Title of the figure.
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.patches import Arc, Circle
    except ImportError as exc:  # matplotlib is optional
        raise ImportError("plot needs matplotlib: pip install matplotlib") from exc
    _, K = post.shape
    percent = post / post.sum(axis=1).reshape(-1, 1)
    fig, ax = plt.subplots()
    ax.title.set_text(title)
    ax.set_xlim((-20, 20))
    ax.set_ylim((-20, 20))
    radius = 0.25
    colors = ["r", "b", "k", "y", "m", "c"]
    for i, point in enumerate(X):
        theta = 0
        for j in range(K):
            offset = percent[i, j] * 360
            arc = Arc(point, radius, radius, angle=0, theta1=theta,
                      theta2=theta + offset, edgecolor=colors[j % len(colors)])
            ax.add_patch(arc)
            theta += offset
    for j in range(K):
        mu = mixture.mu[j]
        sigma = np.sqrt(mixture.var[j])
        circle = Circle(mu, sigma, color=colors[j % len(colors)], fill=False)
        ax.add_patch(circle)
        legend = "mu = ({:0.2f}, {:0.2f})\n stdv = {:0.2f}".format(mu[0], mu[1], sigma)
        ax.text(mu[0], mu[1], legend)
    plt.axis("equal")
    plt.show()
