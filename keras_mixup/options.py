"""The option table: every mixing option declared once, with its default,
its check, its documentation, how it is saved, and what uses it.

An entry point (`Mixup`, `mix_with`, `MixupLayer`, `MixupModel`, the
variants' map functions) takes the options of this table that it lists;
a variant declares its own options in its module (`Variant.options`) and
they join the table when the variant is registered. An option that the
chosen variants or pairing do not use is refused when given, and left out
of configs; a config that still holds one (saved before the option was
checked) loads without it.
"""

import dataclasses
import re
import textwrap

from keras_mixup import boxes, checks, knn_features, pairing, sequences

__all__ = [
    "MODEL_ONLY",
    "MODES",
    "OPTIONS",
    "Option",
    "add",
    "check_names",
    "check_used",
    "document_options",
    "unused",
]

#: The values of `mode`: one lam per example, or one per batch.
MODES = ("elem", "batch")


def _same(value):
    return value


def as_list(value):
    """A tuple option as a list (JSON has no tuples), `None` kept."""
    return None if value is None else list(value)


def _always(resolved):
    return True


@dataclasses.dataclass(frozen=True)
class Option:
    """One mixing option.

    Attributes:
        name: the argument name.
        default: the value when it is not given.
        check: validates a value and returns it normalised; raises a
            `ValueError` naming the option otherwise.
        doc: its documentation (an `Args:` entry without the default).
        to_config: the value as saved in a config. Defaults to the value.
        from_config: the value read back from a config.
        used: `used(resolved)` says whether the option takes effect, where
            `resolved` is a `keras_mixup.variants.Resolved` (the chosen
            variants and the other options). Defaults to always.
        users: what uses the option, for the error refusing it where it
            does not take effect (such as `"pairing='knn'"`).
    """

    name: str
    default: object
    check: object
    doc: str
    to_config: object = _same
    from_config: object = _same
    used: object = _always
    users: str = ""


def variant_option(variant, name, default, check, doc, **fields):
    """An option of the variant named `variant` alone: it takes effect
    when the options name that variant (alone or in a choice), and is
    refused otherwise, naming the variant. `fields` are the other
    `Option` fields (such as `to_config`)."""
    return Option(
        name,
        default,
        check,
        doc,
        used=lambda resolved: variant in resolved.names,
        users=f"the {variant} variant (`variant={variant!r}` or a dict "
        "naming it)",
        **fields,
    )


def variant_alpha(variant, title, doc=None):
    """The option `<variant>_alpha`: the variant's own Beta concentration
    (`None` for `alpha`); `title` names the variant in its doc, or `doc`
    replaces that doc."""
    name = f"{variant}_alpha"
    return variant_option(
        variant,
        name,
        None,
        lambda value: checks.check_optional_alpha(value, name),
        doc
        or f"the Beta concentration of {title}'s lam, or `None` for `alpha`.",
    )


def variant_range(variant, name, default, meaning, doc):
    """An option of the variant `variant` alone: a range of fractions `(lo,
    hi)`, 0 < lo <= hi <= 1, `meaning` saying what it ranges over (for its
    error), saved as a list."""
    return variant_option(
        variant,
        name,
        default,
        lambda value: checks.check_minmax(
            value, name, meaning=meaning, optional=False
        ),
        doc,
        to_config=as_list,
    )


def choice(name, choices, meaning=""):
    """A check that `value` is one of `choices`."""
    return lambda value: checks.check_choice(value, name, choices, meaning)


def _check_variant(value):
    from keras_mixup import variants  # registers the variants' options

    return variants.check_variant(value)


def _knn(resolved):
    return resolved.options["pairing"] in pairing.KNN_PAIRINGS


def _spatial(resolved):
    return resolved.variant.spatial


def _boxes(resolved):
    return "bounding_boxes" in resolved.variant.takes


def _geometric_boxes(resolved):
    return resolved.variant.needs_box_format


def _padding(resolved):
    return sequences.PADDING_MASK in resolved.variant.takes


_COMMON = (
    Option(
        "alpha",
        0.2,
        checks.check_alpha,
        "the Beta concentration, a finite number above 0. Small values "
        "(0.1 to 0.4) mix gently; 1 gives a uniform lam.",
    ),
    Option(
        "num_classes",
        None,
        checks.check_num_classes,
        "the number of classes, to one-hot encode integer labels "
        "(class ids of shape `[B]` or `[B, 1]`); float labels must then "
        "have `num_classes` values per example. With `None`, float "
        "labels (one-hot, soft, multi-label, regression) are blended "
        "as they are.",
    ),
    Option(
        "label_smoothing",
        0.0,
        checks.check_label_smoothing,
        "label smoothing in [0, 1), applied before blending.",
    ),
    Option(
        "mode",
        "elem",
        choice("mode", MODES, " (one lam per example or per batch)"),
        '`"elem"` for one draw per example, `"batch"` for one per batch '
        "(the paper's reference code); a choice among variants is made "
        "per example or per batch alike.",
    ),
    Option(
        "variant",
        "mixup",
        lambda value: _check_variant(value),
        'the member of the mixing family: a name (`"mixup"`, '
        '`"cutmix"`, ...) or a dict of names to probabilities summing to '
        '1 (`{"mixup": 0.5, "cutmix": 0.5}`), chosen per example or per '
        "batch as `mode` says.",
    ),
    Option(
        "pairing",
        "random",
        choice("pairing", pairing.NAMES),
        'who is mixed with whom: `"random"` (a random permutation, '
        'the paper\'s choice), `"same_class"` (a partner of the same '
        "class; an example alone in its class comes back unmixed), "
        '`"knn"` (a partner drawn uniformly among the `knn_k` nearest '
        'neighbours in the batch), `"same_class_knn"` (among the '
        'nearest of the same class) or `"label_kernel"` (C-Mixup, for '
        "regression: a partner with a similar label, drawn with a "
        "Gaussian kernel of width `label_bandwidth` on the label "
        "distance; float labels only).",
    ),
    Option(
        "knn_k",
        5,
        lambda value: checks.check_int(
            value, "knn_k", minimum=1, meaning=pairing.KNN_K_MEANING
        ),
        "the number of nearest neighbours for the knn pairings, an int "
        "of at least 1, clamped to batch size - 1.",
        used=_knn,
        users="the knn pairings (`pairing='knn'` or `'same_class_knn'`)",
    ),
    Option(
        "knn_features",
        None,
        lambda value: checks.check_optional_callable(
            value,
            "knn_features",
            "a callable mapping a batch of inputs to feature vectors "
            "(None: distances on the flattened inputs)",
        ),
        "for the knn pairings, a callable mapping the inputs to "
        "feature vectors (such as `keras_mixup.MeanPool(64)` or a "
        "model's embedding); `None` compares the flattened inputs. "
        "Saved in a config only if registered with "
        "`keras.saving.register_keras_serializable`.",
        to_config=knn_features.serialize,
        from_config=knn_features.deserialize,
        used=_knn,
        users="the knn pairings (`pairing='knn'` or `'same_class_knn'`)",
    ),
    Option(
        "mix_labels",
        True,
        lambda value: checks.check_bool(value, "mix_labels"),
        "`True` for mixup (lam ~ Beta(alpha, alpha), labels blended); "
        "`False` for the inputs-only form: lam ~ Beta(alpha + 1, "
        "alpha), labels and sample weights returned as given.",
    ),
    Option(
        "prob",
        1.0,
        checks.check_prob,
        "the probability that a batch is mixed at all, in [0, 1]; an "
        "unmixed batch comes back unchanged (labels encoded).",
    ),
    Option(
        "seed",
        None,
        checks.check_seed,
        "an int for a reproducible stream of draws, or `None` (a seed "
        "drawn from Python's `random`, as Keras's `SeedGenerator` does: "
        "`keras.utils.set_random_seed` makes it reproducible).",
    ),
    Option(
        "fused",
        "auto",
        checks.check_fused,
        "`True` compiles the mixing with XLA (one pass over the batch), "
        '`False` runs plain TensorFlow ops, `"auto"` uses XLA in '
        "graphs where the platform has it.",
    ),
    Option(
        "label_bandwidth",
        1.0,
        lambda value: checks.check_number(
            value, "label_bandwidth", pairing.LABEL_BANDWIDTH_MEANING
        ),
        'for `pairing="label_kernel"` (C-Mixup), sigma, the width of '
        "the Gaussian kernel on the label distance, a finite number above 0 "
        "in the units of the labels: small values mix examples with "
        "close labels only, large ones approach random pairing.",
        used=lambda resolved: resolved.options["pairing"] == "label_kernel",
        users="C-Mixup (`pairing='label_kernel'`)",
    ),
    Option(
        "clean_loss_weight",
        0.0,
        lambda value: checks.check_number(
            value,
            "clean_loss_weight",
            " (the weight of the loss on the unmixed batch)",
            inclusive=True,
        ),
        "RegMixup (`MixupModel` only): when above 0, each training step "
        "also computes the loss on the unmixed batch and adds it with "
        "this weight to the mixed loss (RegMixup: 1, with alpha 10 to "
        "20).",
    ),
    Option(
        "mix_loss",
        False,
        lambda value: checks.check_bool(value, "mix_loss"),
        "loss mixing (`MixupModel` only): `True` mixes the inputs and not "
        "the labels, and trains on lam * loss(y_i, f(x~)) + (1 - lam) * "
        "loss(y_j, f(x~)) with the compiled loss, whatever it is (sparse "
        "cross-entropy with `ignore_class`, CTC, mean squared error), "
        "through sample weights; labels reach the loss as given (class "
        "ids too, unless `num_classes` is set).",
    ),
    Option(
        "data_format",
        None,
        choice("data_format", (None, "channels_last", "channels_first")),
        "where the cutting variants find the two spatial axes of images "
        "`[B, H, W, C]` and videos `[B, T, H, W, C]` (the same cut on "
        "every frame); `None` means `keras.config.image_data_format()`.",
        used=_spatial,
        users="the variants that cut images",
    ),
    Option(
        "axes",
        None,
        checks.check_axes,
        "the axes the cutting variants cut (1 to 3 ints, such as `(1, 2)` "
        "for `[B, H, W]`), for inputs that are not images or videos; "
        "inputs of rank < 3 that they do not fit are blended with the "
        "label weight. `None`: the spatial axes of `data_format`.",
        to_config=as_list,
        used=_spatial,
        users="the variants that cut images",
    ),
    Option(
        "bounding_box_format",
        None,
        lambda value: checks.check_box_format(value, boxes.FORMATS),
        'the format of keras\'s `bounding_boxes` (`"xyxy"`, '
        '`"yxyx"`, `"xywh"`, `"center_xywh"`, `"center_yxhw"` or their '
        '`"rel_"` forms, relative to the image size); needed when the '
        "elements hold boxes that a cutting variant moves.",
        used=_boxes,
        users="the variants that take boxes (their boxes are checked "
        "against it; the cutting ones move them)",
    ),
    Option(
        "min_box_visibility",
        0.1,
        lambda value: checks.check_prob(
            value,
            "min_box_visibility",
            "(the fraction of a box's area that must stay visible)",
        ),
        "with a cutting variant, a box keeping less than this fraction of "
        "its area visible is dropped (padded with -1).",
        used=_geometric_boxes,
        users="the variants that move boxes",
    ),
    Option(
        "mask_rule",
        sequences.DEFAULT_RULE,
        sequences.check_rule,
        "how padded sequences mix (inputs with a padding mask: a Keras "
        "mask, or a `'padding_mask'` entry of a dict of inputs): "
        '`"union"` (valid where either example is, padding as zeros, '
        'label weight lam), `"intersection"` (valid where both are) or '
        '`"anchor"` (each example keeps its own mask; label weight '
        "1 - (1 - lam) * |M_i and M_j| / |M_i|). See the guide "
        '"Sequences and audio".',
        used=_padding,
        users="the variants that mix padded sequences (mixup)",
    ),
)

#: Every option, by name: the common ones, then each registered variant's.
OPTIONS = {option.name: option for option in _COMMON}

#: The options only `MixupModel` takes: they change its training step.
MODEL_ONLY = ("clean_loss_weight", "mix_loss")


def add(option):
    """Adds a variant's option to the table (see
    `keras_mixup.variants.register`).

    Raises:
        ValueError: if another option has the name.
    """
    if option.name in OPTIONS and OPTIONS[option.name] is not option:
        raise ValueError(f"The option {option.name!r} is declared twice.")
    OPTIONS[option.name] = option


def document_options(doc, names, renamed=None):
    """`doc` with its `{options}` line replaced by the `Args:` entries of
    the named options, indented as that line is; `renamed` maps an
    option's name to the argument it is documented as. Defaults to
    `None`: every option under its own name."""
    renamed = renamed or {}

    def entries(match):
        indent = match.group(1)
        return "\n".join(
            textwrap.fill(
                f"{renamed.get(name, name)}: {OPTIONS[name].doc} Defaults to "
                f"`{OPTIONS[name].default!r}`.",
                width=80,
                initial_indent=indent,
                subsequent_indent=indent + "    ",
            )
            for name in names
        )

    return re.sub(r"^( *)\{options\}$", entries, doc, flags=re.M)


def check_names(owner, given, accepted):
    """Refuses options the entry point does not take.

    Raises:
        ValueError: naming the unknown options and the accepted ones.
    """
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(
            f"{owner} got unknown option(s) {unknown}; it takes "
            f"{list(accepted)}."
        )


def unused(names, resolved):
    """The options among `names` that do not take effect."""
    return [name for name in names if not OPTIONS[name].used(resolved)]


def check_used(owner, given, resolved):
    """Refuses options given, at a value other than their default, that the
    chosen variants or pairing ignore (a default passed on, such as
    `knn_k=5` from a command line, changes nothing and passes).

    Raises:
        ValueError: naming the option, what uses it and what was chosen.
    """
    changed = [name for name in given if given[name] != OPTIONS[name].default]
    for name in unused(changed, resolved):
        raise ValueError(
            f"{owner} got `{name}`, which only {OPTIONS[name].users} "
            f"use(s); with variant={resolved.options['variant']!r} and "
            f"pairing={resolved.options['pairing']!r} it would be ignored. "
            "Drop it, or choose what uses it."
        )
