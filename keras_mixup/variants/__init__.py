"""The mixing family: every variant, registered by name.

`variant=` in every entry point takes a registered name or a dict of names
to probabilities (a `keras_mixup.variants.choice.Choice`). `register` adds a
variant: its class (a `keras_mixup.variants.base.Variant`) and its options,
which join the option table.

Example:

```python
assert {"mixup", "cutmix"} <= set(keras_mixup.variants.REGISTRY)
choice = keras_mixup.variants.check_variant({"mixup": 0.5, "cutmix": 0.5})
mixer = keras_mixup.Mixup(variant=choice, num_classes=4, seed=1)
images, labels = mixer(np.random.rand(8, 16, 16, 3).astype("float32"),
                       np.arange(8) % 4)
assert labels.shape == (8, 4)
```
"""

import math
import numbers

from keras_mixup import options as option_table
from keras_mixup.variants import (
    base,
    choice,
    cutmix,
    fmix,
    gridmix,
    mixup,
    mosaic,
    resizemix,
)
from keras_mixup.variants.base import (
    Draw,
    DrawContext,
    Resolved,
    Variant,
    as_draw,
    pad_rows,
)

__all__ = [
    "REGISTRY",
    "Draw",
    "DrawContext",
    "Resolved",
    "Variant",
    "as_draw",
    "base",
    "check_variant",
    "names",
    "pad_rows",
    "register",
    "resolve",
]

#: The registered variant classes, by name.
REGISTRY = {}


def register(variant_class):
    """Registers a variant class under its `name`, its options in the
    option table; returns the class (usable as a decorator).

    Raises:
        ValueError: for a name registered by another class.
    """
    name = variant_class.name
    if REGISTRY.get(name, variant_class) is not variant_class:
        raise ValueError(f"A variant named {name!r} is already registered.")
    for option in variant_class.options:
        option_table.add(option)
    REGISTRY[name] = variant_class
    return variant_class


def _accepted():
    return (
        f"a variant name ({sorted(REGISTRY)}) or a dict of such names to "
        "probabilities (numbers >= 0 summing to 1)"
    )


def check_variant(value):
    """Validates `variant`: a registered name, or a dict of names to
    probabilities summing to 1.

    Returns:
        The name, or the dict with float probabilities.

    Raises:
        ValueError: naming the value received and what is accepted.
    """
    if isinstance(value, str):
        if value not in REGISTRY:
            raise ValueError(
                f"`variant` must be {_accepted()}; received {value!r}."
            )
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError(
            f"`variant` must be {_accepted()}; received {value!r}."
        )
    for name, probability in value.items():
        if name not in REGISTRY:
            raise ValueError(
                f"`variant` names {name!r}, which is not a variant; the "
                f"variants are {sorted(REGISTRY)}."
            )
        if (
            not isinstance(probability, numbers.Real)
            or isinstance(probability, bool)
            or not 0 <= probability <= 1
        ):
            raise ValueError(
                f"`variant[{name!r}]` must be a probability in [0, 1]; "
                f"received {probability!r}."
            )
    total = math.fsum(value.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(
            "The probabilities of `variant` must sum to 1; received "
            f"{value!r}, which sums to {total!r}."
        )
    return {name: float(p) for name, p in value.items()}


def _members(options):
    """The `(name, probability)` pairs the options choose among."""
    spec = options["variant"]
    if spec == "mixup" and options.get("cutmix_alpha") is not None:
        switch = options["switch_prob"]
        return [("mixup", 1.0 - switch), ("cutmix", switch)]
    if isinstance(spec, str):
        return [(spec, 1.0)]
    return list(spec.items())


def names(options):
    """The names of every variant the options name."""
    return frozenset(name for name, _ in _members(options))


def resolve(options):
    """The variant the options choose: one registered variant, or a
    `Choice` among several (the legacy `cutmix_alpha` and `switch_prob`
    give the mixup/CutMix switch). Members of probability 0 never run."""
    members = [(n, p) for n, p in _members(options) if p > 0]
    if len(members) == 1:
        return REGISTRY[members[0][0]](options)
    return choice.Choice(
        options, [(REGISTRY[name](options), p) for name, p in members]
    )


register(mixup.Mixup)
register(cutmix.CutMix)
register(fmix.FMix)
register(gridmix.GridMix)
register(resizemix.ResizeMix)
register(mosaic.Mosaic)
