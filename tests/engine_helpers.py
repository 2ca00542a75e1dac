"""Applying a hand-made draw through the engine, as the entry points do."""

import functools

from keras_mixup.engine import MixingEngine


@functools.cache
def _engine(options):
    # One engine per set of options: its variables are then created once,
    # outside any `tf.function` that calls `mix_batch`.
    return MixingEngine(**dict(options))


def mix_batch(x, y, sample_weight, lam, partner_index, **options):
    """`MixingEngine(**options).apply((lam, partner_index), ...)`, with
    `mix_labels` passed to `apply` (the engine refuses label smoothing with
    `mix_labels=False` at construction)."""
    mix_labels = options.pop("mix_labels", True)
    engine = _engine(tuple(sorted(options.items())))
    return engine.apply(
        (lam, partner_index), x, y, sample_weight, mix_labels=mix_labels
    )
