"""Who is mixed with whom: the partner index of every example in a batch.

A pairing strategy is a function `(batch_size, seed, *, inputs, labels,
**options) -> partner_index`, returning an int32 tensor of shape
`[batch_size]` whose entry `i` is the row that example `i` is mixed with.
Strategies are registered by name in `PAIRINGS`; `partner_index` is the one
entry point the rest of the package calls.
"""

import tensorflow as tf


def random_partner(batch_size, seed, *, inputs=None, labels=None):
    """A uniformly random permutation of the batch (the paper's pairing).

    Args:
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: unused; accepted for the common strategy signature.
        labels: unused; accepted for the common strategy signature.

    Returns:
        An int32 tensor of shape `[batch_size]`, a permutation of
        `range(batch_size)`.
    """
    del inputs, labels
    keys = tf.random.stateless_uniform([batch_size], seed=seed)
    return tf.argsort(keys, stable=True, direction="ASCENDING")


#: Pairing strategies by name.
PAIRINGS = {"random": random_partner}


def check_pairing(pairing):
    """Validates a pairing name.

    Raises:
        ValueError: if `pairing` is not one of `PAIRINGS`.
    """
    if pairing not in PAIRINGS:
        raise ValueError(
            f"`pairing` must be one of {sorted(PAIRINGS)}; received "
            f"{pairing!r}."
        )
    return pairing


def partner_index(pairing, batch_size, seed, *, inputs=None, labels=None,
                  **options):
    """Draws the partner of every example with the named strategy.

    Args:
        pairing: the strategy's name, a key of `PAIRINGS`.
        batch_size: the number of examples, an int or a scalar int tensor.
        seed: a stateless seed, an int tensor of shape `[2]`.
        inputs: the batch's inputs, for strategies that look at them.
        labels: the batch's labels, for strategies that look at them.
        **options: strategy-specific options.

    Returns:
        An int32 tensor of shape `[batch_size]`.
    """
    strategy = PAIRINGS[check_pairing(pairing)]
    index = strategy(batch_size, seed, inputs=inputs, labels=labels, **options)
    return tf.cast(index, tf.int32)
