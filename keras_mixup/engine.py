"""The mixing engine: every option declared once, one draw, one apply.

Every entry point (`Mixup`, `mix_with`, `MixupLayer`, `MixupModel`,
`MixupGAN`) holds a `MixingEngine`. The engine owns the options (each one
declared in `OPTIONS`, where it is validated, stored, serialised and
printed), the mixing state a `MixupSchedule` changes, and the seed stream;
it draws a batch's lam, partners and whether the batch is mixed
(`draw`), and applies a draw to inputs, labels and sample weights
(`apply`). Entry points choose which options they take and how a batch
reaches the engine; they never copy an option or re-implement a draw or a
blend. A new option is one more `Option` here.
"""

import dataclasses
import re
import textwrap

import keras

from keras_mixup import (
    backend,
    blending,
    boxes,
    checks,
    cutmix,
    draws,
    knn_features,
    pairing,
)
from keras_mixup.backend import tf
from keras_mixup.labels import encode_labels
from keras_mixup.state import (
    MixingState,
    SeedSource,
    load_seed_state,
    save_seed_state,
)

__all__ = [
    "MODEL_ONLY",
    "MODES",
    "OPTIONS",
    "HoldsEngine",
    "MixingEngine",
    "Option",
    "document_options",
]

#: The values of `mode`: one lam per example, or one per batch.
MODES = ("elem", "batch")


def _same(value):
    return value


def _as_list(value):
    return None if value is None else list(value)


@dataclasses.dataclass(frozen=True)
class Option:
    """One mixing option: its name, default, check, documentation and how
    it is written to and read from a config."""

    name: str
    default: object
    check: object
    doc: str
    to_config: object = _same
    from_config: object = _same


def _choice(name, choices, meaning=""):
    return lambda value: checks.check_choice(value, name, choices, meaning)


OPTIONS = {
    option.name: option
    for option in (
        Option(
            "alpha",
            0.2,
            checks.check_alpha,
            "the Beta concentration, a finite number > 0. Small values "
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
            _choice("mode", MODES, " (one lam per example or per batch)"),
            '`"elem"` for one lam per example, `"batch"` for one lam per '
            "batch (the paper's reference code).",
        ),
        Option(
            "pairing",
            "random",
            _choice("pairing", pairing.NAMES),
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
            ">= 1, clamped to batch size - 1.",
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
            "an int for a reproducible stream of draws, or `None`.",
        ),
        Option(
            "fused",
            "auto",
            checks.check_fused,
            "`True` compiles the blend with XLA (one pass over the batch), "
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
            "the Gaussian kernel on the label distance, a finite number > 0 "
            "in the units of the labels: small values mix examples with "
            "close labels only, large ones approach random pairing.",
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
            "RegMixup (`MixupModel` only): when > 0, each training step "
            "also computes the loss on the unmixed batch and adds it with "
            "this weight to the mixed loss (RegMixup: 1, with alpha 10 to "
            "20).",
        ),
        Option(
            "cutmix_alpha",
            None,
            lambda value: checks.check_optional_alpha(value, "cutmix_alpha"),
            "the Beta concentration of CutMix (Yun et al. 2019), or `None` "
            "for mixup alone. When set, each batch (or example, in "
            '`"elem"` mode) is CutMix with probability `switch_prob` and '
            "mixup otherwise: a box of area about 1 - lam, lam ~ "
            "Beta(cutmix_alpha, cutmix_alpha), of the partner's pixels is "
            "pasted in, and the labels are weighed by the pixels kept.",
        ),
        Option(
            "switch_prob",
            0.5,
            lambda value: checks.check_prob(
                value, "switch_prob", "(the probability of CutMix over mixup)"
            ),
            "with `cutmix_alpha`, the probability that a mixed batch (or "
            "example) is CutMix rather than mixup, in [0, 1].",
        ),
        Option(
            "cutmix_minmax",
            None,
            lambda value: checks.check_minmax(value, "cutmix_minmax"),
            "`None`, or `(lo, hi)` with 0 < lo <= hi <= 1: CutMix draws the "
            "box's side fractions uniformly in that range, the box inside "
            "the image (timm's `cutmix_minmax`), instead of from lam.",
            to_config=_as_list,
        ),
        Option(
            "correct_lam",
            True,
            lambda value: checks.check_bool(value, "correct_lam"),
            "`True` weighs a cut example's labels by the exact fraction of "
            "pixels it keeps (after the box is clipped at the border); "
            "`False` by the drawn lam.",
        ),
        Option(
            "data_format",
            None,
            _choice("data_format", (None, "channels_last", "channels_first")),
            "where CutMix finds the two spatial axes of images "
            "`[B, H, W, C]` and videos `[B, T, H, W, C]` (the same box on "
            "every frame); `None` means `keras.config.image_data_format()`.",
        ),
        Option(
            "axes",
            None,
            checks.check_axes,
            "the axes CutMix cuts (1 to 3 ints, such as `(1, 2)` for "
            "`[B, H, W]`), for inputs that are not images or videos; inputs "
            "of rank < 3 that they do not fit are blended with the label "
            "weight. `None`: the spatial axes of `data_format`.",
            to_config=_as_list,
        ),
        Option(
            "bounding_box_format",
            None,
            lambda value: checks.check_box_format(value, boxes.FORMATS),
            'the format of keras\'s `bounding_boxes` (`"xyxy"`, '
            '`"yxyx"`, `"xywh"`, `"center_xywh"`, `"center_yxhw"` or their '
            '`"rel_"` forms, relative to the image size); needed when the '
            "elements hold boxes.",
        ),
        Option(
            "min_box_visibility",
            0.1,
            lambda value: checks.check_prob(
                value,
                "min_box_visibility",
                "(the fraction of a box's area that must stay visible)",
            ),
            "with CutMix, a box keeping less than this fraction of its "
            "area visible is dropped (padded with -1).",
        ),
    )
}

#: The options only `MixupModel` takes: they change its training step.
MODEL_ONLY = ("clean_loss_weight",)


def document_options(doc, names):
    """`doc` with its `{options}` line replaced by the `Args:` entries of
    the named options, indented as that line is."""

    def entries(match):
        indent = match.group(1)
        return "\n".join(
            textwrap.fill(
                f"{name}: {OPTIONS[name].doc} Defaults to "
                f"`{OPTIONS[name].default!r}`.",
                width=80,
                initial_indent=indent,
                subsequent_indent=indent + "    ",
            )
            for name in names
        )

    return re.sub(r"^( *)\{options\}$", entries, doc, flags=re.M)


def _check_names(owner, given, accepted):
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(
            f"{owner} got unknown option(s) {unknown}; it takes "
            f"{list(accepted)}."
        )


class MixingEngine:
    """Draws and applies the mixing of batches, from one set of options.

    Args:
        owner: the name of the entry point, for error messages. Defaults
            to `"Mixup"`.
        accepted: the names of the options the entry point takes, in the
            order they are saved and printed. Defaults to every option.
        **options: the option values (see `OPTIONS`); missing ones take
            their defaults.

    Raises:
        ValueError: for an option the entry point does not take, an
            invalid value, or `label_smoothing` with `mix_labels=False`.
    """

    def __init__(
        self,
        *,
        owner="Mixup",
        accepted=tuple(OPTIONS),
        variant="mixup",
        **options,
    ):
        _check_names(owner, options, accepted)
        self.owner = owner
        self.accepted = tuple(accepted)
        #: `"mixup"` (CutMix too with `cutmix_alpha`) or `"cutmix"` (every
        #: mixed example is CutMix, lam ~ Beta(alpha, alpha)).
        self.variant = variant
        self.options = {
            name: option.check(options.get(name, option.default))
            for name, option in OPTIONS.items()
        }
        if not self.options["mix_labels"] and self.options["label_smoothing"]:
            raise ValueError(
                "`label_smoothing` has no effect with `mix_labels=False` "
                "(labels are returned as given); received "
                f"label_smoothing={options['label_smoothing']!r}. Smooth the "
                "labels in the loss instead."
            )
        if self.cuts:
            checks.check_cutmix_use(self.options, owner)
        #: What `keras_mixup.MixupSchedule` changes: the switch and alpha.
        self.state = MixingState(self.options["alpha"], self.options["prob"])
        self._seed_source = None
        #: The seed stream of a JAX or PyTorch model's steps (`None` on the
        #: TensorFlow backend): the layer or model holding the engine
        #: tracks it, so Keras threads its state through a JAX step.
        self.seed_generator = None
        if keras.backend.backend() == "tensorflow":
            self.prepare_tensorflow()
        else:
            self.seed_generator = keras.random.SeedGenerator(
                self.options["seed"], name="mixup_seed_generator"
            )

    @property
    def seed_source(self):
        """The seed stream of `tf.data` and of the TensorFlow backend (a
        `keras_mixup.state.SeedSource`), made on first use."""
        if self._seed_source is None:
            self._seed_source = SeedSource(self.options["seed"])
        return self._seed_source

    def prepare_tensorflow(self):
        """Makes the TensorFlow state now (the seed stream and variables
        of `tf.data`): what the `tf.data` entry points do at
        construction, so no variable is made while a pipeline traces."""
        self.state.tensorflow_variables()
        return self.seed_source

    def next_seed(self):
        """The seed of the next draw: a fresh stateless seed on TensorFlow,
        else the `seed_generator` (which each draw advances)."""
        if backend.name() == "tensorflow":
            return self.seed_source.next_seed()
        return self.seed_generator

    @classmethod
    def taking(cls, owner, accepted, named, kwargs, *, variant="mixup"):
        """The engine of an entry point: the options it takes by name
        (`named`, a dict), and those found in `kwargs`, which are removed
        from it (what is left belongs to the entry point's base class, such
        as `name`)."""
        refused = sorted(
            k for k in kwargs if k in OPTIONS and k not in accepted
        )
        _check_names(owner, refused, accepted)
        options = {k: kwargs.pop(k) for k in accepted if k in kwargs}
        return cls(
            owner=owner, accepted=accepted, variant=variant, **named, **options
        )

    @property
    def cuts(self):
        """Whether some batches or examples are CutMix."""
        return (
            self.variant == "cutmix" or self.options["cutmix_alpha"] is not None
        )

    @property
    def only_cuts(self):
        """Whether every mixed example is CutMix (the paste keeps dtypes)."""
        return self.variant == "cutmix" or (
            self.cuts and self.options["switch_prob"] == 1.0
        )

    @property
    def alpha(self):
        """The alpha the next batch is drawn with, a Python float (the
        shortest decimal that the float32 variable holds: 0.3, not
        0.30000001192092896)."""
        return self.state.values()[0]

    def get_config(self):
        """The accepted options, as a config."""
        return {
            name: OPTIONS[name].to_config(self.options[name])
            for name in self.accepted
        }

    @staticmethod
    def options_from_config(config):
        """Decodes the options of a config (other keys pass unchanged)."""
        return {
            key: OPTIONS[key].from_config(value) if key in OPTIONS else value
            for key, value in config.items()
        }

    def describe(self):
        """`"alpha=0.2, num_classes=10, ..."`: the accepted options."""
        return ", ".join(
            f"{name}={self.options[name]!r}" for name in self.accepted
        )

    def with_input_pipeline(self, input_pipeline_id):
        """A copy with the same options and its own seed stream, which
        folds `input_pipeline_id` into every seed."""
        copy = MixingEngine(
            owner=self.owner,
            accepted=self.accepted,
            variant=self.variant,
            **{name: self.options[name] for name in self.accepted},
        )
        copy._seed_source = SeedSource(
            self.options["seed"], input_pipeline_id=input_pipeline_id
        )
        return copy

    def draw_lambda(self, shape, seed, *, inputs_only=False):
        """lam with the current alpha: Beta(alpha, alpha), or
        Beta(alpha + 1, alpha) with `inputs_only`."""
        return draws.sample_lambda(
            shape, self.state.alpha, seed, inputs_only=inputs_only
        )

    def draw(
        self,
        batch_size,
        x=None,
        y=None,
        *,
        inputs_only=None,
        partner_x=None,
        partner_y=None,
    ):
        """Draws a batch's lam and partner index.

        Args:
            batch_size: the batch size, an int or a scalar int tensor.
            x: the batch's inputs, for pairings that look at them.
            y: the batch's labels, for pairings that look at them.
            inputs_only: draw lam from Beta(alpha + 1, alpha). Defaults to
                `None`, which means `not mix_labels`.
            partner_x: a partner batch to draw partners from, or `None`
                for the batch itself. Defaults to `None`.
            partner_y: the partner batch's labels. Defaults to `None`.

        Returns:
            `(lam, partner_index)`: lam float32 `[batch_size]` (`[]` in
            `"batch"` mode), partner_index int32 `[batch_size]` (into the
            batch, or with `partner_x` into the concatenation of the batch
            and the partner batch). A batch that is not mixed (switched
            off, or not drawn with probability `prob`) gets lam 1 and each
            example as its own partner, which the blend returns exactly.
            With CutMix, a `keras_mixup.cutmix.CutDraw`, whose boxes are
            drawn for the images of `x`.
        """
        if inputs_only is None:
            inputs_only = not self.options["mix_labels"]
        lam_seed, partner_seed, apply_seed = backend.split(
            self.next_seed(), count=3
        )
        shape = [batch_size] if self.options["mode"] == "elem" else []
        lam = self.draw_lambda(shape, lam_seed, inputs_only=inputs_only)
        partner_index = pairing.partner_index(
            self.options["pairing"],
            batch_size,
            partner_seed,
            inputs=x,
            labels=y,
            partner_inputs=partner_x,
            partner_labels=partner_y,
            knn_k=self.options["knn_k"],
            knn_features=self.options["knn_features"],
            label_bandwidth=self.options["label_bandwidth"],
        )
        mixed = self.state.decide(apply_seed)
        numpy = backend.ops().numpy
        itself = numpy.arange(batch_size, dtype="int32")
        partner_index = numpy.where(mixed, partner_index, itself)
        if self.cuts:
            return self._draw_cuts(lam, partner_index, mixed, x, apply_seed)
        return numpy.where(mixed, lam, numpy.ones_like(lam)), partner_index

    def _draw_cuts(self, lam, partner_index, mixed, x, seed):
        """The CutMix part of a draw: which examples are cut, their boxes
        (for the images of `x`) and label weights; see `draw`."""
        options = self.options
        switch_seed, lam_seed, box_seed = backend.split(
            backend.fold_in(seed, 1), count=3
        )
        if self.variant == "cutmix":
            cut_lam, cut = lam, tf.ones_like(lam, tf.bool)
        else:
            cut_lam = draws.sample_lambda_tf(
                tf.shape(lam), options["cutmix_alpha"], lam_seed
            )
            cut = (
                tf.random.stateless_uniform(tf.shape(lam), switch_seed)
                < options["switch_prob"]
            )
        leaves, specs, _, _ = cutmix.split_inputs(
            x, options["data_format"], options["axes"]
        )
        lows, highs, kept = cutmix.draw_boxes(
            cutmix.spatial_sizes(leaves[0], specs[0][1]),
            tf.reshape(cut_lam, [-1]),
            box_seed,
            minmax=options["cutmix_minmax"],
        )
        if options["correct_lam"] or options["cutmix_minmax"]:
            cut_lam = tf.reshape(kept, tf.shape(lam))
        lam = tf.where(mixed, tf.where(cut, cut_lam, lam), tf.ones_like(lam))
        cut = tf.logical_and(cut, mixed)
        return cutmix.CutDraw(lam, partner_index, cut, lows, highs)

    def blend(self, structure, lam, partner_index):
        """Blends a structure with the draw, as `fused` says."""
        return blending.blend(
            structure, lam, partner_index, fused=self.options["fused"]
        )

    def encode(self, y):
        """Labels as mixup blends them: class ids one-hot, smoothed."""
        return encode_labels(
            y, self.options["num_classes"], self.options["label_smoothing"]
        )

    def apply(self, draw, x, y=None, sample_weight=None, *, mix_labels=None):
        """Applies a draw `(lam, partner_index)` to a batch.

        Args:
            draw: `(lam, partner_index)`, as `draw` returns it.
            x: the inputs, a tensor or nested structure.
            y: the labels, or `None`. Defaults to `None`.
            sample_weight: per-example weights, or `None`. Defaults to
                `None`.
            mix_labels: blend labels and weights too; with `False` they
                come back as given. Defaults to `None` (the option).

        Returns:
            `(x, y, sample_weight)` mixed, `None` entries kept; labels as
            floats (encoded) when they are mixed.
        """
        lam, partner_index = draw[:2]
        if mix_labels is None:
            mix_labels = self.options["mix_labels"]
        if not mix_labels:
            return self.blend(x, lam, partner_index), y, sample_weight
        if y is not None:
            y = self.encode(y)
        if sample_weight is not None:
            sample_weight = _float_weights(
                checks.check_tensor(sample_weight, "sample_weight")
            )
        if isinstance(draw, cutmix.CutDraw):
            return self._apply_cuts(draw, x, y, sample_weight)
        # Inputs, labels and weights in one blend: one XLA launch per batch.
        parts = [part for part in (x, y, sample_weight) if part is not None]
        mixed = iter(self.blend(parts, lam, partner_index))
        return tuple(
            None if part is None else next(mixed)
            for part in (x, y, sample_weight)
        )

    def _apply_cuts(self, draw, x, y, sample_weight):
        """Pastes the images of `x`, blends the rest with the label
        weight; see `apply`."""
        images, specs, others, repack = cutmix.split_inputs(
            x, self.options["data_format"], self.options["axes"]
        )
        pasted = cutmix.paste(
            images,
            draw,
            specs,
            blends=not self.only_cuts,
            fused=self.options["fused"],
        )
        parts = [others, y, sample_weight]
        present = [part for part in parts if part is not None]
        mixed = iter(self.blend(present, draw.lam, draw.partner_index))
        others, y, sample_weight = (
            None if part is None else next(mixed) for part in parts
        )
        return repack(pasted, others), y, sample_weight

    def mix(self, x, y=None, sample_weight=None, *, inputs_only=None):
        """Checks, draws and mixes one batch with itself.

        With `inputs_only` (default: `not mix_labels`), only the inputs are
        blended, with lam ~ Beta(alpha + 1, alpha), and `y` and
        `sample_weight` come back as given.

        Returns:
            `(x, y, sample_weight)`, `None` entries kept.
        """
        if inputs_only is None:
            inputs_only = not self.options["mix_labels"]
        if inputs_only and self.cuts:
            raise ValueError(
                f"{self.owner} cannot CutMix without labels. "
                + checks.CUTMIX_NEEDS_LABELS
            )
        x, y, sample_weight, size = checks.check_batch(x, y, sample_weight)
        draw = self.draw(size, x, y, inputs_only=inputs_only)
        return self.apply(draw, x, y, sample_weight, mix_labels=not inputs_only)

    def mix_with_partner(
        self, x, y, sample_weight, *, partner_x, partner_y, partner_weight
    ):
        """Mixes a batch with a partner batch (see `keras_mixup.mix_with`).

        The two are concatenated, the partner rows map to themselves, and
        the batch's rows are sliced back out of one blend.
        """
        x, y, sample_weight, size = checks.check_batch(x, y, sample_weight)
        partner_x, partner_y, partner_weight, partner_size = checks.check_batch(
            partner_x, partner_y, partner_weight, prefix="partner_"
        )
        _check_partner(x, partner_x, "x")
        mix_labels = self.options["mix_labels"]
        if mix_labels and y is not None:
            _require_partner_labels(partner_y)
            _check_partner(y, partner_y, "y")
        draw = self.draw(size, x, y, partner_x=partner_x, partner_y=partner_y)
        lam, index = draw[:2]
        index = tf.concat([index, tf.range(size, size + partner_size)], 0)
        if self.options["mode"] == "elem":
            lam = tf.concat([lam, tf.ones([partner_size], lam.dtype)], 0)
        both = _concat(x, partner_x)
        if not mix_labels:
            mixed = self.blend(both, lam, index)
            return _head(mixed, size), y, sample_weight
        labels = None if y is None else _concat(y, partner_y)
        weights = _concat_weights(
            sample_weight, partner_weight, size, partner_size
        )
        if isinstance(draw, cutmix.CutDraw):
            draw = cutmix.pad_draw(
                draw._replace(partner_index=index), partner_size
            )
        else:
            draw = (lam, index)
        mixed = self.apply(draw, both, labels, weights)
        return tuple(
            None if part is None else _head(part, size) for part in mixed
        )


def _float_weights(weight):
    if backend.is_floating(weight):
        return weight
    return backend.ops().core.cast(weight, keras.config.floatx())


def _concat(structure, partner):
    return tf.nest.map_structure(
        lambda a, b: tf.concat([a, b], axis=0), structure, partner
    )


def _head(structure, size):
    return tf.nest.map_structure(lambda t: t[:size], structure)


def _require_partner_labels(partner_y):
    if partner_y is None:
        raise ValueError(
            "`mix_labels=True` blends labels, so the partner batch needs "
            "labels too; received partner labels None. Use "
            "`mix_labels=False` (the inputs-only form) for unlabelled "
            "partners."
        )


def _check_partner(structure, partner, name):
    """Checks that a partner structure matches the batch's one."""
    try:
        tf.nest.assert_same_structure(structure, partner)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"`partner_{name}` must have the structure of `{name}`; "
            f"received {tf.nest.map_structure(lambda t: t.shape, partner)} "
            f"for {tf.nest.map_structure(lambda t: t.shape, structure)}."
        ) from error
    for ours, theirs in zip(
        tf.nest.flatten(structure), tf.nest.flatten(partner), strict=True
    ):
        if ours.dtype != theirs.dtype:
            raise ValueError(
                f"`partner_{name}` must have the dtype of `{name}`; received "
                f"{theirs.dtype.name} for {ours.dtype.name}."
            )
        if ours.shape.rank != theirs.shape.rank or not ours.shape[
            1:
        ].is_compatible_with(theirs.shape[1:]):
            raise ValueError(
                f"`partner_{name}` must have the shape of `{name}` apart "
                f"from the batch size; received {theirs.shape} for "
                f"{ours.shape}."
            )


def _concat_weights(weight, partner_weight, size, partner_size):
    """Both sides' sample weights, a missing side counting as 1."""
    if weight is None and partner_weight is None:
        return None
    weights = [
        tf.ones([rows], keras.config.floatx())
        if w is None
        else _float_weights(w)
        for w, rows in ((weight, size), (partner_weight, partner_size))
    ]
    weights[1] = tf.cast(weights[1], weights[0].dtype)
    _check_partner(weights[0], weights[1], "sample_weight")
    return tf.concat(weights, axis=0)


def _option_property(name):
    return property(
        lambda self: self.engine.options[name],
        doc=f"The `{name}` option: {OPTIONS[name].doc}",
    )


class HoldsEngine:
    """What every entry point shows of its engine: each option as a
    read-only attribute, `alpha` as the alpha the next batch is drawn with,
    and `mixing_state`, what a `keras_mixup.MixupSchedule` changes."""

    def hold_engine(self, owner, accepted, named, kwargs, *, variant="mixup"):
        """Builds `self.engine` from the options the entry point takes by
        name (`named`) and those in `kwargs`, and initialises the next base
        class (a Keras layer or model) with the rest of `kwargs`."""
        mixing = MixingEngine.taking(
            owner, accepted, named, kwargs, variant=variant
        )
        if not isinstance(self, keras.layers.Layer):
            _check_names(owner, kwargs, accepted)  # no base takes the rest
        super().__init__(**kwargs)
        self.engine = mixing
        if isinstance(self, keras.layers.Layer):
            checks.check_in_model_backend(owner, mixing.options, mixing.cuts)
            self._track_mixing_state()

    def _track_mixing_state(self):
        """Tracks the seed generator (on JAX and PyTorch) and, on JAX, the
        switch and alpha variables, so that Keras threads them through
        its stateless step (they are then non-trainable weights of the
        layer; PyTorch steps read them live)."""
        if self.engine.seed_generator is not None:
            self._mixing_seed_generator = self.engine.seed_generator
        if keras.backend.backend() == "jax":
            self._mixing_variables = self.engine.state.variables

    def _seed_streams(self):
        """The engine's seed streams, as `state.save_seed_state` takes
        them (none for an object without an engine)."""
        mixing = getattr(self, "engine", None)
        if mixing is None:
            return {}
        return {
            "seed_source": mixing._seed_source,
            "seed_generator": mixing.seed_generator,
        }

    def save_own_variables(self, store):
        """Saves where the seed streams are, so that a loaded model resumes
        with the same draws (see `keras_mixup.state.save_seed_state`);
        the switch and alpha are not saved (a `MixupSchedule` sets them)."""
        save_seed_state(store, **self._seed_streams())

    def load_own_variables(self, store):
        """Loads the seed streams `save_own_variables` saved, when the file
        holds this backend's kind of stream."""
        load_seed_state(store, **self._seed_streams())

    def _described(self):
        """What the repr shows: `name=...` and every option."""
        return [f"name={self.name!r}", self.engine.describe()]

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(self._described())})"

    @property
    def alpha(self):
        """The alpha the next batch is drawn with (a `MixupSchedule` may
        have changed it; `get_config` keeps the constructor's)."""
        return self.engine.alpha

    @property
    def mixing_state(self):
        """The switch and alpha a `keras_mixup.MixupSchedule` changes."""
        return self.engine.state


for _name in OPTIONS:
    if _name != "alpha":
        setattr(HoldsEngine, _name, _option_property(_name))
del _name
