"""The mixing engine: one set of options, one draw, one apply.

Every entry point (`Mixup`, `mix_with`, `MixupLayer`, `MixupModel`,
`MixupGAN`) holds a `MixingEngine`. The engine owns the options (declared
in `keras_mixup.options`), the variant they choose (`keras_mixup.variants`),
the mixing state a `MixupSchedule` changes, and the seed stream. It draws a
batch (`draw`: the variant's parameters, the partners, whether the batch is
mixed) and applies a draw to each target of a batch (`apply`): the images
the variant cuts, the other inputs, labels and sample weights, segmentation
masks and detection boxes. It never names a variant: what a variant does
with each target is the variant's (see `keras_mixup.variants.base`).
"""

import keras

from keras_mixup import (
    backend,
    blending,
    checks,
    draws,
    pairing,
    sequences,
    spatial,
    variants,
)
from keras_mixup.labels import encode_labels
from keras_mixup.settings import Settings
from keras_mixup.state import MixingState, SeedSource

__all__ = ["MixingEngine", "apply_rest", "float_weights"]


@backend.not_converted_methods(
    "draw_lambda", "draw", "apply", "apply_padded", "apply_boxes", "mix"
)
class MixingEngine:
    """Draws and applies the mixing of batches, from one set of options.

    Args:
        owner: the name of the entry point, for error messages. Defaults
            to `"Mixup"`.
        accepted: the names of the options the entry point takes, in the
            order they are saved and printed. Defaults to every option.
        fixed: options the entry point sets itself (such as the variant
            of a map function named after one), never given by the user.
            Defaults to none.
        mixes: `False` for an engine that never mixes (the plain
            `MixupGAN`): it has options and a seed stream, no mixing
            state. Defaults to `True`.
        **values: the option values (see `keras_mixup.options.OPTIONS`);
            missing ones take their defaults.

    Raises:
        ValueError: for an option the entry point does not take, an
            invalid value, an option the chosen variants or pairing do not
            use, `label_smoothing` with `mix_labels=False`, or a variant
            without an inputs-only form with `mix_labels=False`.
    """

    def __init__(
        self, *, owner="Mixup", accepted=None, fixed=None, mixes=True, **values
    ):
        #: The checked options and the variant they choose.
        self.settings = Settings(owner, accepted, fixed, values)
        self.owner = owner
        self.accepted = self.settings.accepted
        self.options = self.settings.options
        #: The variant that mixes (one, or a choice among several).
        self.variant = self.settings.variant
        #: Whether it mixes at all.
        self.mixes = mixes
        #: Whether `mix` and `encode` check the batch's values (class ids
        #: in range, finite labels, valid weights): `False` only while a
        #: JAX `MixupModel` step that checked its batch itself with array
        #: ops mixes it (see `keras_mixup.model_steps.screen`), so that
        #: no host callback is compiled into the step.
        self.check_values = True
        #: What `keras_mixup.MixupSchedule` changes: the switch and alpha
        #: (`None` for an engine that never mixes).
        self.state = None
        if mixes:
            self.state = MixingState(
                self.options["alpha"], self.options["prob"]
            )
        self._seed_source = None
        #: The seed stream of a JAX or PyTorch model's steps (`None` on the
        #: TensorFlow backend): the layer or model holding the engine
        #: tracks it, so Keras threads its state through a JAX step.
        self.seed_generator = None
        if backend.keras_backend() == "tensorflow":
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
        if self.state is not None:
            self.state.tensorflow_variables()
        return self.seed_source

    def next_seed(self):
        """The seed of the next draw: a fresh stateless seed on TensorFlow,
        else the `seed_generator` (which each draw advances)."""
        if backend.name() == "tensorflow":
            return self.seed_source.next_seed()
        return self.seed_generator

    def with_input_pipeline(self, input_pipeline_id):
        """A copy with the same options and mixing state (a `MixupSchedule`
        on this engine reaches the copy) and its own seed stream, which
        folds `input_pipeline_id` into every seed."""
        copy = object.__new__(MixingEngine)
        copy.__dict__.update(self.__dict__)
        copy._seed_source = SeedSource(
            self.options["seed"], input_pipeline_id=input_pipeline_id
        )
        return copy

    def draw_lambda(self, shape, seed, *, alpha=None, inputs_only=False):
        """lam with `alpha`, or the current alpha for `None`: Beta(alpha,
        alpha), or Beta(alpha + 1, alpha) with `inputs_only`."""
        alpha = self.state.alpha if alpha is None else alpha
        return draws.sample_lambda(shape, alpha, seed, inputs_only=inputs_only)

    def split(self, x):
        """`keras_mixup.spatial.split_inputs` with the engine's options."""
        return spatial.split_inputs(
            x, self.options["data_format"], self.options["axes"], self.owner
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
        """Draws a batch: the variant's parameters and label weight, the
        partners, and whether the batch is mixed.

        Args:
            batch_size: the batch size, an int or a scalar int tensor.
            x: the batch's inputs, for pairings that look at them and
                variants that cut them.
            y: the batch's labels, for pairings that look at them.
            inputs_only: draw lam from Beta(alpha + 1, alpha). Defaults to
                `None`, which means `not mix_labels`.
            partner_x: a partner batch to draw partners from, or `None`
                for the batch itself. Defaults to `None`.
            partner_y: the partner batch's labels. Defaults to `None`.

        Returns:
            A `keras_mixup.variants.Draw`: lam float32 `[batch_size]` (`[]`
            in `"batch"` mode), the label weight; partner_index int32
            `[batch_size]` (into the batch, or with `partner_x` into the
            concatenation of the batch and the partner batch). A batch that
            is not mixed (switched off, or not drawn with probability
            `prob`) gets lam 1 and each example as its own partner, which
            every variant returns exactly.
        """
        if inputs_only is None:
            inputs_only = not self.options["mix_labels"]
        lam_seed, partner_seed, apply_seed = backend.split(
            self.next_seed(), count=3
        )
        context = variants.DrawContext(
            self,
            batch_size=batch_size,
            inputs=x,
            lam_seed=lam_seed,
            seed=backend.fold_in(apply_seed, 1),
            inputs_only=inputs_only,
        )
        draw = self.variant.draw(context)
        partner_index = _partners(
            self.options,
            batch_size,
            partner_seed,
            (x, y, partner_x, partner_y),
            self.variant.sources,
        )
        mixed = self.state.decide(apply_seed)
        lam, partner_index = draws.unless_mixed(
            mixed, draw.lam, partner_index, batch_size
        )
        return draw._replace(lam=lam, partner_index=partner_index)

    def check_batch(self, *batch):
        """`keras_mixup.sequences.check_batch` of `(x, y, sample_weight)`,
        the values checked unless `check_values` is off."""
        return sequences.check_batch(*batch, check_values=self.check_values)

    def encode(self, y):
        """Labels as they are mixed: class ids one-hot, smoothed."""
        return encode_labels(
            y,
            self.options["num_classes"],
            self.options["label_smoothing"],
            check_range=self.check_values,
        )

    def apply(
        self,
        draw,
        x,
        y=None,
        sample_weight=None,
        *,
        mix_labels=None,
        masks=None,
    ):
        """Applies a draw to a batch.

        Args:
            draw: a `keras_mixup.variants.Draw`, as `draw` returns it, or
                `(lam, partner_index)` for a variant that needs no more.
            x: the inputs, a tensor or nested structure.
            y: the labels, or `None`. Defaults to `None`.
            sample_weight: per-example weights, or `None`. Defaults to
                `None`.
            mix_labels: blend labels and weights too; with `False` they
                come back as given. Defaults to `None` (the option).
            masks: segmentation masks, already encoded (see
                `keras_mixup.labels.encode_masks`), or `None`. Defaults to
                `None`.

        Returns:
            `(x, y, sample_weight)` mixed, `None` entries kept; labels as
            floats (encoded) when they are mixed. With `masks`, `(x, y,
            sample_weight, masks)`.
        """
        draw = variants.as_draw(draw)
        if mix_labels is None:
            mix_labels = self.options["mix_labels"]
        if mix_labels:
            y, sample_weight = _encoded(self, y, sample_weight)
        else:
            self.settings.check_inputs_only()
        structure = x if masks is None else (x, masks)
        images, others, repack = _split_images(self, structure, masks)
        images = _apply_images(self, draw, images)
        labels = (y, sample_weight) if mix_labels else (None, None)
        others, *labels = apply_rest(self, draw, others, *labels)
        if mix_labels:
            y, sample_weight = labels
        structure = repack(images, others)
        if masks is None:
            return structure, y, sample_weight
        x, masks = structure
        return x, y, sample_weight, masks

    def apply_padded(
        self, draw, x, mask, y=None, sample_weight=None, *, mix_labels=None
    ):
        """Applies a draw to padded sequences `x` with their padding mask
        (bool `[B, T]`) under `mask_rule`; see
        `keras_mixup.sequences.apply_padded`.

        Returns:
            `(x, y, sample_weight, combined_mask)`.
        """
        return sequences.apply_padded(
            self, draw, x, mask, y, sample_weight, mix_labels=mix_labels
        )

    def apply_boxes(self, draw, bounding_boxes, x):
        """Mixes keras's `bounding_boxes` with a draw, for the images of
        `x` (see `keras_mixup.boxes`)."""
        sizes = None
        if self.variant.spatial:
            images, specs, _, _ = self.split(x)
            sizes = spatial.sizes(images[0], specs[0][1])
        return self.variant.apply_boxes(draw, bounding_boxes, sizes)

    def mix(self, x, y=None, sample_weight=None, *, inputs_only=None):
        """Checks, draws and mixes one batch with itself.

        With `inputs_only` (default: `not mix_labels`), only the inputs are
        mixed, with lam ~ Beta(alpha + 1, alpha), and `y` and
        `sample_weight` come back as given.

        Returns:
            `(x, y, sample_weight)`, `None` entries kept.
        """
        if inputs_only is None:
            inputs_only = not self.options["mix_labels"]
        if inputs_only:
            self.settings.check_inputs_only()
        if sequences.is_padded(x):  # {..., "padding_mask": m}
            return sequences.mix_padded_dict(
                self, x, y, sample_weight, inputs_only=inputs_only
            )
        x, y, sample_weight, size = self.check_batch(x, y, sample_weight)
        draw = self.draw(size, x, y, inputs_only=inputs_only)
        return self.apply(draw, x, y, sample_weight, mix_labels=not inputs_only)


def _partners(settings, batch_size, seed, batch, sources=2):
    """The pairing's partner index for `batch`, `(x, y, partner_x,
    partner_y)`: `[B]`, or for a variant of more `sources` `[B, sources -
    1]`, one pairing draw per column (the first with `seed`, as a
    two-source variant draws it)."""
    x, y, partner_x, partner_y = batch
    columns = [
        pairing.partner_index(
            settings["pairing"],
            batch_size,
            seed if column == 0 else backend.fold_in(seed, column),
            inputs=x,
            labels=y,
            partner_inputs=partner_x,
            partner_labels=partner_y,
            knn_k=settings["knn_k"],
            knn_features=settings["knn_features"],
            label_bandwidth=settings["label_bandwidth"],
        )
        for column in range(sources - 1)
    ]
    if sources == 2:
        return columns[0]
    return backend.ops().numpy.stack(columns, axis=1)


def _split_images(engine, structure, masks):
    """The image leaves the variant cuts with their `(rank, axes,
    kind)`, the other leaves, and `repack(images, others)`."""
    if not engine.variant.spatial:
        if backend.ops().core.is_tensor(structure):  # no walk of a tensor
            return [], [structure], lambda _, others: others[0]
        leaves = keras.tree.flatten(structure)
        return (
            [],
            leaves,
            lambda _, others: keras.tree.pack_sequence_as(structure, others),
        )
    images, specs, others, repack = engine.split(structure)
    kinds = ["inputs"] * len(images)
    if masks is not None:
        kinds[-1] = "segmentation_masks"  # the last leaf of (x, masks)
        if not any(image is masks for image in images):
            raise ValueError(
                "Segmentation masks must be cut with the images: give "
                "them the images' spatial axes ([B, H, W, 1] for images "
                f"[B, H, W, C]); received masks of shape "
                f"{tuple(masks.shape)}."
            )
    specs = [(*spec, kind) for spec, kind in zip(specs, kinds, strict=True)]
    return list(zip(images, specs, strict=True)), others, repack


def _apply_images(engine, draw, images):
    """The variant's images mixed (see `_split_images`), as one XLA
    computation where `fused` says so."""
    if not images:
        return []
    dtype = keras.config.dtype_policy().compute_dtype
    leaves = [image for image, _ in images]
    specs = tuple(spec for _, spec in images)
    run = _run_images
    if blending.use_fused(engine.options["fused"]):
        run = blending.xla_compiled(run)
    return run(engine.variant, draw, leaves, specs, dtype)


def _encoded(engine, y, sample_weight):
    """Labels encoded and sample weights as floats, for blending."""
    y = None if y is None else engine.encode(y)
    if sample_weight is not None:
        sample_weight = float_weights(
            checks.check_tensor(sample_weight, "sample_weight")
        )
    return y, sample_weight


def apply_rest(engine, draw, others, y, sample_weight):
    """The leaves the variant does not cut, the labels and the sample
    weights (`None` for those not mixed) through the variant's
    `apply_labels`, in one call; `None` entries kept."""
    parts = [others, y, sample_weight]
    present = [part for part in parts if part is not None]
    mixed = iter(
        engine.variant.apply_labels(
            draw, present, fused=engine.options["fused"]
        )
    )
    return [None if part is None else next(mixed) for part in parts]


def _run_images(variant, draw, images, specs, float_dtype):
    """`variant.apply_images`: the function XLA compiles, traced once per
    variant and structure."""
    return variant.apply_images(draw, images, specs, float_dtype)


def float_weights(weight):
    """Sample weights as floats (integer weights cast to `floatx`)."""
    if backend.is_floating(weight):
        return weight
    return backend.ops().core.cast(weight, keras.config.floatx())
