"""
The recommender against the baselines
=====================================

Synthetic ratings shaped like real ones (strong user and item offsets, a few
weak taste groups, noisy ratings) are split 80/20 at random. Every predictor
is fitted on the 80% and scored by its RMSE on the 20% it never saw:
:class:`fastem.Recommender`, the plain :class:`fastem.GaussianMixture` (its
posterior mean of each held-out entry) and three baselines: the global mean,
the item means, and regularised user + item biases. The recommender comes
out best: it keeps the offsets that the plain mixture cannot express and adds
the groups' tastes on top of them.
"""

import matplotlib.pyplot as plt
import numpy as np
import scipy.sparse as sp

import fastem
from fastem.datasets import make_ratings

# %%
# Ratings and an 80/20 split
# --------------------------
# The options of ``fastem demo``: user offsets (sd 0.5), 4 weak taste groups
# (sd 0.25) and rating noise (sd 0.8), at a smaller size.
ratings = make_ratings(8_000, 1_000, 300_000, n_groups=4, user_sd=0.5, taste_sd=0.25,
                       noise_sd=0.8, random_state=0).to_csr().tocoo()
users, items, values = ratings.row, ratings.col, ratings.data
test = np.random.default_rng(0).random(ratings.nnz) < 0.2
train = sp.csr_matrix((values[~test], (users[~test], items[~test])), shape=ratings.shape)
u, i, actual = users[test], items[test], values[test]
print(f"{ratings.shape[0]:,} users x {ratings.shape[1]:,} items: "
      f"{train.nnz:,} ratings to fit, {actual.size:,} to score")

# %%
# Baselines, in a few lines of NumPy
# ----------------------------------
# The biases are shrunk towards 0 by pseudo-counts (25 ratings for an item,
# 10 for a user), so that an item or user with few ratings keeps a small offset.
tu, ti, tr = users[~test], items[~test], values[~test]
n_users, n_items = ratings.shape
mean = tr.mean()
item_sum = np.bincount(ti, tr - mean, n_items)
item_count = np.bincount(ti, minlength=n_items)
item_mean = mean + np.divide(item_sum, item_count, out=np.zeros(n_items),
                             where=item_count > 0)
item_bias = item_sum / (25 + item_count)
user_bias = (np.bincount(tu, tr - mean - item_bias[ti], n_users)
             / (10 + np.bincount(tu, minlength=n_users)))
predictions = {
    "global mean": np.full(actual.size, mean),
    "item means": item_mean[i],
    "user + item biases": mean + user_bias[u] + item_bias[i],
}

# %%
# The mixture and the recommender
# -------------------------------
# The held-out entries are missing from ``train``, so ``predict_entries`` gives
# each one its posterior mean given the rest of the user's ratings.
mixture = fastem.GaussianMixture(n_components=8, random_state=0).fit(train)
predictions["Gaussian mixture (K = 8)"] = mixture.predict_entries(train, u, i)
recommender = fastem.Recommender(random_state=0).fit(train)
predictions["fastem.Recommender"] = recommender.predict(u, i)

rmse = {name: np.sqrt(np.mean((guess - actual) ** 2))
        for name, guess in predictions.items()}
for name, error in sorted(rmse.items(), key=lambda pair: pair[1]):
    print(f"{name:26s} RMSE {error:.4f}")

# %%
# Held-out RMSE, best at the top
# ------------------------------
# The axis starts at 0.7 so that the differences show; the labels give the values.
names = sorted(rmse, key=rmse.get, reverse=True)
colors = ["C3" if name == "fastem.Recommender" else "C7" for name in names]
fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
bars = ax.barh(names, [rmse[name] for name in names], color=colors)
ax.bar_label(bars, fmt="%.3f", padding=3)
ax.set_xlim(0.7, 1.05 * max(rmse.values()))
ax.set(xlabel="RMSE on the 20% held-out ratings (lower is better)",
       title="Held-out RMSE of each predictor")
plt.show()
