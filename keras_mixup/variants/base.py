"""The variant protocol: what every member of the mixing family does.

A variant draws its parameters for a batch (`draw`: the label weight lam,
the partner index, and its own boxes, masks or tiles) and applies them to
each kind of target: images (`apply_image`, one batch-first tensor at a
time, cut along its spatial axes), labels, sample weights and the inputs
it does not cut (`apply_labels`: blended with the label weight),
detection boxes (`apply_boxes`) and the padding masks of sequences
(`apply_padding`, the opt-in target `"padding_mask"`). It declares which
targets it takes (`takes`), whether it cuts images (`spatial`), whether
every value it returns is a value of its inputs (`keeps_values`: a paste
keeps integer images integer) and whether it has an inputs-only form. The
engine and the entry points call these and never name a variant.

A variant draws from `sources` examples per output: the example and
`sources - 1` partners (2 for a blend or a paste, 4 for Mosaic). With more
than one partner, `Draw.partner_index` is `[B, sources - 1]` (one pairing
draw per column) and the labels are the weighted sum of the sources'
labels with the weights `source_weights` gives (the exact fraction of
each example's values from each source).

A new variant is a subclass in a module of `keras_mixup.variants` and one
`keras_mixup.variants.register` call.
"""

import collections

from keras_mixup import backend, blending, spatial

__all__ = [
    "Draw",
    "DrawContext",
    "PADDING_MASK",
    "Resolved",
    "TARGETS",
    "Variant",
    "as_draw",
    "pad_rows",
]

#: The kinds of target a batch may carry.
TARGETS = (
    "inputs",
    "labels",
    "sample_weight",
    "segmentation_masks",
    "bounding_boxes",
)

#: The target of padded sequences and their masks: not in `TARGETS`, so a
#: variant takes it only by naming it in `takes` (and defining
#: `apply_padding`); the others get one clear error.
PADDING_MASK = "padding_mask"


class Draw(collections.namedtuple("Draw", ["lam", "partner_index", "params"])):
    """One batch's draw.

    Attributes:
        lam: float32 `[B]` (`[]` in `"batch"` mode): the weight of each
            example's own label, the exact fraction of its values that are
            its own; 1 for an example that is not mixed.
        partner_index: int32 `[B]`, each example's partner (itself when not
            mixed); `[B, sources - 1]` for a variant of more sources.
        params: a dict of the variant's own tensors (boxes, masks, ...).
    """


def as_draw(draw):
    """`draw` as a `Draw`: an injected `(lam, partner_index)` pair (tests,
    a model's step plan) becomes one with no variant parameters."""
    if isinstance(draw, Draw):
        return draw
    return Draw(draw[0], draw[1], {})


#: What `Option.used` reads: the variant that runs, the names of every
#: variant the options name (a zero probability included), the options.
Resolved = collections.namedtuple("Resolved", ["variant", "names", "options"])


class DrawContext:
    """What a variant's `draw` may read and draw with.

    Attributes:
        batch_size: an int, or on TensorFlow a scalar int tensor.
        shape: `[batch_size]` in `"elem"` mode, `[]` in `"batch"` mode: the
            shape of one draw of lam.
        inputs: the batch's inputs (a structure), or `None`.
        inputs_only: whether lam is drawn for the inputs-only form.
    """

    def __init__(
        self,
        engine,
        *,
        batch_size,
        inputs,
        lam_seed,
        seed,
        inputs_only,
    ):
        self._engine = engine
        self.batch_size = batch_size
        self.per_example = engine.options["mode"] == "elem"
        self.shape = [batch_size] if self.per_example else []
        self.inputs = inputs
        self.inputs_only = inputs_only
        self._lam_seed = lam_seed
        self._seed = seed

    def lam(self, alpha=None):
        """lam of the shape of a draw: Beta(alpha, alpha), or Beta(alpha +
        1, alpha) for the inputs-only form; `alpha=None` is the engine's
        current alpha (the one a `MixupSchedule` sets)."""
        return self._engine.draw_lambda(
            self.shape,
            self._lam_seed,
            alpha=alpha,
            inputs_only=self.inputs_only,
        )

    def seed(self, purpose):
        """A seed for the variant's own draws, one per int `purpose`."""
        return backend.fold_in(self._seed, purpose)

    def image_sizes(self):
        """The sizes along the cut axes of the images the variant cuts
        (the first image of the inputs)."""
        leaves, specs, _, _ = self._engine.split(self.inputs)
        return spatial.sizes(leaves[0], specs[0][1])

    def for_rows(self, count):
        """This context for a sub-batch of `count` examples (a choice's
        members drawn on the examples that chose them): the same seeds,
        inputs and image sizes."""
        rows = DrawContext.__new__(DrawContext)
        rows.__dict__.update(self.__dict__)
        rows.batch_size = count
        rows.shape = [count] if self.per_example else []
        return rows

    def child(self, index):
        """The context of the `index`-th member of a choice: its own seeds
        (the first member keeps these, so a choice starting with mixup
        draws mixup's lam as mixup alone does)."""
        if index == 0:
            return self
        child = DrawContext.__new__(DrawContext)
        child.__dict__.update(self.__dict__)
        child._lam_seed = backend.fold_in(self._lam_seed, index)
        child._seed = backend.fold_in(self._seed, 100 + index)
        return child


class Variant:
    """A member of the mixing family (see the module docstring).

    Class attributes:
        name: the registered name.
        options: the variant's own `keras_mixup.options.Option`s.
        alpha_option: the name of its own Beta concentration option (used
            when set, else `alpha`), or `None`.
        spatial: whether it cuts images along their spatial axes (else
            every input is blended).
        keeps_values: whether every value it returns is one of the inputs'
            (integer inputs then stay integer).
        inputs_only_form: whether it has an inputs-only form (symmetric
            under swapping the two examples: a blend is, a cut is not).
        takes: the targets it applies to (`TARGETS`).
        needs_box_format: whether it moves boxes (and needs their format).
        sources: the number of examples each output is drawn from (the
            example and `sources - 1` partners).
        keeps_mask_values: whether segmentation masks keep their values
            (integer masks stay integer), where `keeps_values` is false
            for the images (a resampling that pastes masks by nearest
            neighbour). Defaults to `keeps_values`.

    Args:
        options: the engine's options, validated.
    """

    name = None
    options = ()
    alpha_option = None
    spatial = False
    keeps_values = False
    inputs_only_form = True
    takes = frozenset(TARGETS[:4])
    needs_box_format = False
    sources = 2
    #: How many axes it cuts, or `None` for as many as `axes` names.
    cut_axes = None
    #: The value of a per-example draw parameter for an example that is
    #: not mixed (what `pad` fills it with), by name; 0 for the others.
    unmixed_params = {}
    #: Why it has no inputs-only form, for the error refusing it.
    needs_labels_reason = ""

    def __init__(self, options):
        self.config = options

    @property
    def names(self):
        """The names of the variants it draws among (itself alone)."""
        return frozenset([self.name])

    @property
    def keeps_mask_values(self):
        """Whether integer segmentation masks stay integer."""
        return self.keeps_values

    @property
    def alpha(self):
        """Its own alpha, or `None` for the engine's."""
        if self.alpha_option is None:
            return None
        return self.config[self.alpha_option]

    def check_cut_axes(self, sizes):
        """`sizes` (the sizes along the axes it would cut) as they are,
        when their number is `cut_axes`.

        Raises:
            ValueError: naming the variant, for another number of axes.
        """
        count = self.cut_axes
        if count is not None and len(sizes) != count:
            words = {1: "one axis", 2: "two axes (height and width)"}
            what = words.get(count, f"{count} axes")
            raise ValueError(
                f"variant={self.name!r} cuts {what}; it "
                f"would cut {len(sizes)} here (`axes`): pass {count} axes, "
                "such as axes=(1, 2)."
            )
        return sizes

    def draw(self, context):
        """Draws the batch's parameters (a `DrawContext` gives the batch and
        the seeds); returns a `Draw` whose `partner_index` is `None`: the
        engine draws the partners (the pairing) and sets it."""
        raise NotImplementedError

    def pad(self, draw, rows):
        """The draw extended by `rows` examples that are their own partners
        and are not mixed (the partner batch of `keras_mixup.mix_with`; the
        partner index must already cover them): lam 1, and each
        per-example parameter filled with its `unmixed_params` value (0
        unless named there). A draw for the whole batch is kept as it is."""
        if backend.rank(draw.lam) == 0:
            return draw
        params = {
            key: pad_rows(value, rows, self.unmixed_params.get(key, 0))
            for key, value in draw.params.items()
        }
        return Draw(pad_rows(draw.lam, rows, 1.0), draw.partner_index, params)

    def apply_images(self, draw, images, specs, float_dtype):
        """Mixes every image of an element (`specs`: their `(rank, axes,
        kind)`); integer images are cast to `float_dtype` first unless the
        variant `keeps_values`. On TensorFlow the engine runs this as one
        XLA computation (the partner gather, the masks and the selects
        fuse into one pass over each image)."""
        mixed = []
        for image, (rank, axes, kind) in zip(images, specs, strict=True):
            keeps = self.keeps_values
            if kind == "segmentation_masks":
                keeps = self.keeps_mask_values
            if not keeps and not backend.is_floating(image):
                image = backend.ops().core.cast(image, float_dtype)
            mixed.append(self.apply_image(draw, image, rank, axes, kind=kind))
        return mixed

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        """Mixes one image tensor (`kind`: `"inputs"` or
        `"segmentation_masks"`), cut along `axes`; returns it mixed."""
        ops = backend.ops()
        partner = ops.numpy.take(image, draw.partner_index, axis=0)
        return blending.blend_pair(image, partner, draw.lam)

    def apply_labels(self, draw, structure, *, fused="auto"):
        """Blends labels, sample weights and uncut inputs with the label
        weight (one blend for the whole structure); with more than two
        sources, their sum weighed by `source_weights`."""
        if self.sources > 2:
            indices, weights = self.source_weights(draw)
            return blending.blend_sources(structure, indices, weights)
        return blending.blend(
            structure, draw.lam, draw.partner_index, fused=fused
        )

    def source_weights(self, draw):
        """Each example's sources and the weight of each.

        Returns:
            `(indices, weights)`: int32 `[B, sources]`, the example itself
            then its partners, and float32 `[B, sources]` summing to 1.
        """
        np = backend.ops().numpy
        lam = (
            np.ones_like(backend.ops().core.cast(draw.partner_index, "float32"))
            * draw.lam
        )
        size = backend.ops().core.shape(draw.partner_index)[0]
        itself = np.arange(size, dtype="int32")
        indices = np.stack([itself, draw.partner_index], axis=1)
        return indices, np.stack([lam, 1.0 - lam], axis=1)

    def apply_boxes(self, draw, bounding_boxes, sizes):
        """Mixes keras's `bounding_boxes` dict; `sizes` is `(height,
        width)` of the images."""
        raise NotImplementedError

    def apply_padding(self, draw, sequences, mask, rule, float_dtype):
        """Mixes padded sequences `[B, T, ...]` and their padding mask
        (bool `[B, T]`) under the mask rule `rule` (see
        `keras_mixup.sequences`), for a variant whose `takes` names
        `PADDING_MASK`.

        Returns:
            `(mixed, combined_mask, label_weight)`: the sequences, the
            combined mask, and each example's own-label weight.
        """
        raise NotImplementedError


def pad_rows(value, rows, fill):
    """A per-example tensor extended by `rows` entries of `fill`; a scalar
    (one value for the batch) as it is. What `Variant.pad` does to each
    per-example part of a draw (the partner batch of
    `keras_mixup.mix_with`, RegMixup's clean rows)."""
    if backend.rank(value) == 0:
        return value
    if backend.name() == "torch" and isinstance(rows, int):  # eagerly:
        # two ops, without Keras's conversions (the choice pads often)
        import torch

        extra = value.new_full((rows, *value.shape[1:]), fill)
        return torch.cat([value, extra])
    ops = backend.ops()
    shape = list(ops.core.shape(value))
    shape[0] = rows
    extra = ops.numpy.full(shape, fill, dtype=backend.dtype_name(value))
    return ops.numpy.concatenate([value, extra], axis=0)
