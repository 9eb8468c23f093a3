"""The Dask scheduler as fastem uses it: broadcasts, computations, reductions.

Everything goes through ``dask.compute`` and ``dask.persist``, so it runs on
whatever scheduler is active: a ``distributed.Client`` or Dask's local
threads.
"""

import dask
import dask.sizeof

from .._observed import ObservedData

__all__ = ["SPLIT_EVERY", "SCATTER_TIMEOUT", "active_client", "share", "task", "compute",
           "persist", "tree_sum", "block_owners", "local_first_sum"]

# Partial sums added per task of a reduction on one worker (across workers
# the sums are added pairwise). The trees add in block order: their sums do
# not depend on when the tasks ran, only, in their last bits, on which
# worker holds which block.
SPLIT_EVERY = 8
# Seconds a broadcast of parameters may take (K x d floats, normally well
# under a second) before they go in the task graph instead.
SCATTER_TIMEOUT = 30


def active_client():
    """The distributed Client that ``dask.compute`` would use now, or None."""
    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    if client is not None and type(client).__module__.startswith("distributed"):
        return client
    return None


def share(value):
    """``value`` as a dependency of tasks, sent to the workers once.

    With a distributed Client it is scattered to every worker (one copy
    each, however many tasks read it); otherwise it is one key of the graph.
    Keep the returned object while tasks that read it may still run.
    """
    client = active_client()
    if client is None:
        return dask.delayed(value, traverse=False)
    try:
        # A list of one: scatter would send the items of a tuple one by one.
        return client.scatter([value], broadcast=True, hash=False,
                              timeout=SCATTER_TIMEOUT)[0]
    except (OSError, KeyError):
        # A worker left the cluster during the broadcast (a connection
        # closed or timed out, a worker unknown by the time of the copy).
        # The value then travels in the graph, from which Dask can compute
        # it again wherever it is lost.
        return dask.delayed(value, traverse=False)


def task(function, *args):
    return dask.delayed(function, pure=False)(*args)


def compute(*collections):
    # Graphs of a few tasks per block on blocks already built: nothing to
    # optimise, and optimising costs time on every EM iteration.
    return dask.compute(*collections, optimize_graph=False)


def persist(delayeds):
    return list(dask.persist(*delayeds)) if delayeds else []


def _add(*parts):
    """Sum of tuples of arrays and numbers, item by item, in the order given."""
    total = list(parts[0])
    for part in parts[1:]:
        for k, item in enumerate(part):
            total[k] = total[k] + item
    return tuple(total)


def tree_sum(parts, split_every=SPLIT_EVERY):
    """A task summing the tuples ``parts`` in a tree of fixed shape, in their order."""
    while len(parts) > 1:
        parts = [task(_add, *parts[start:start + split_every])
                 for start in range(0, len(parts), split_every)]
    return parts[0]


def block_owners(blocks):
    """The worker holding each persisted block, or None without a distributed Client."""
    client = active_client()
    if client is None:
        return None
    holders = client.who_has(blocks)
    return [(holders.get(block.key) or (None,))[0] for block in blocks]


def local_first_sum(parts, owners):
    """A task summing the tuples ``parts`` (one per block), worker by worker.

    The parts of the blocks a worker holds are added there first, in block
    order, so that one sum per worker crosses the network, not one per
    block; the sums of the workers are then added pairwise, in the order of
    their first blocks: log2(workers) transfers of one sum on the longest
    path. ``owners`` None: one tree over all the blocks.
    """
    if owners is None:
        return tree_sum(parts)
    groups = {}
    for part, owner in zip(parts, owners):
        groups.setdefault(owner, []).append(part)
    return tree_sum([tree_sum(group) for group in groups.values()], split_every=2)


# Dask places tasks by the size of their inputs: without these, a block
# would look like a small object, free to move to wherever a task runs.
@dask.sizeof.sizeof.register(ObservedData)
def _sizeof_block(block):
    return int(block.data.nbytes + block.indices.nbytes + block.indptr.nbytes)
