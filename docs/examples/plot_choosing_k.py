"""
Choosing the number of components
=================================

Synthetic 1..5 ratings are drawn from a planted number of taste groups, and
:func:`fastem.select_n_components` fits one mixture per number of components
K, scoring each in two ways: the BIC of the fit on all the ratings (lower is
better), and the log-likelihood of 10% of the ratings held out, given the
rest of their user's ratings (higher is better). Both criteria should pick
the planted number of groups; past it, the held-out log-likelihood flattens
or falls while the BIC rises, since the extra components fit only noise.
"""

import matplotlib.pyplot as plt
import numpy as np

import fastem
from fastem.datasets import make_ratings

# %%
# Ratings with planted groups
# ---------------------------
# 3,000 users rate 300 items, 90,000 ratings in all. Each user belongs to one
# of ``n_groups`` taste groups, which shifts their ratings of every item.
N_GROUPS = 5
ratings = make_ratings(3_000, 300, 90_000, n_groups=N_GROUPS, random_state=0)
print(f"{ratings.shape[0]:,} users x {ratings.shape[1]:,} items, "
      f"{ratings.nnz:,} ratings ({ratings.nnz / np.prod(ratings.shape):.0%} observed)")

# %%
# One fit per K, for each criterion
# ---------------------------------
# Three restarts per K keep a poor local optimum from deciding the curve.
candidates = list(range(1, 9))
bic_table, bic_k, _ = fastem.select_n_components(
    ratings, candidates, criterion="bic", n_init=3, random_state=0)
heldout_table, heldout_k, _ = fastem.select_n_components(
    ratings, candidates, criterion="heldout", heldout_fraction=0.1, n_init=3,
    random_state=0)

print(" K          BIC   held-out LL per rating")
for k, bic, ll in zip(candidates, bic_table["bic"],
                      heldout_table["heldout_log_likelihood"]):
    print(f"{k:2d} {bic:12.1f}   {ll:.4f}")
print(f"planted K = {N_GROUPS}; chosen by BIC: {bic_k}, by held-out "
      f"log-likelihood: {heldout_k}")

# %%
# The two criteria against K
# --------------------------
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
left.plot(candidates, bic_table["bic"], "o-", color="C0")
left.set(xlabel="number of components K", ylabel="BIC (lower is better)",
         title="BIC on all the ratings")
right.plot(candidates, heldout_table["heldout_log_likelihood"], "o-", color="C1")
right.set(xlabel="number of components K",
          ylabel="log-likelihood per held-out rating (nats)",
          title="Held-out log-likelihood (higher is better)")
for ax in (left, right):
    ax.axvline(N_GROUPS, color="grey", linestyle="--", label=f"planted K = {N_GROUPS}")
    ax.set_xticks(candidates)
    ax.legend()
fig.suptitle("Choosing K on synthetic ratings with planted taste groups")
plt.show()
