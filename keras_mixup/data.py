"""`Mixup`, `CutMix`, `ResizeMix` and `Mosaic`, the `tf.data` map
functions, and `mix_with`, mixing a dataset with batches of another."""

import re

import keras

from keras_mixup import (
    backend,
    checks,
    elements,
    options,
    pairing,
    partners,
    variants,
)
from keras_mixup.backend import tf
from keras_mixup.holding import HoldsEngine
from keras_mixup.settings import Settings

__all__ = [
    "CutMix",
    "FMix",
    "GridMix",
    "Mixup",
    "Mosaic",
    "ResizeMix",
    "map_function_options",
    "mix_with",
]

#: The options a Mixup takes: all but those of a training step.
ALL_OPTIONS = tuple(n for n in options.OPTIONS if n not in options.MODEL_ONLY)

#: The default of `Mixup.__call__`'s `y`: the element was one argument.
_ONLY_X = object()


@keras.saving.register_keras_serializable(package="keras_mixup")
@backend.not_converted_methods("draw", "mix")
@backend.not_converted  # its instances, the map functions
class Mixup(HoldsEngine):
    """Mixes batches in a `tf.data` pipeline (mixup, Zhang et al. 2018).

    Each batch `(x, y)` becomes `(lam * x + (1 - lam) * x[p], lam * y +
    (1 - lam) * y[p])`, with `p` the partners (a random permutation by
    default) and lam ~ Beta(alpha, alpha) drawn for every batch in the
    graph. It is pure TensorFlow, so it works in `Dataset.map` on any
    backend: map it after `batch`. See the guide "The `tf.data` pipeline".

    Args:
        alpha: the Beta concentration (> 0). Defaults to `0.2`.
        {options}

    Call arguments:
        x: a batch-first tensor of rank >= 1, a tuple or dict of them (a
            dict with a `"padding_mask"`: see `mask_rule`), or keras's dict
            element `{"images": x, "labels": y}` alone.
        y: the labels; left out only for the dict element.
        sample_weight: optional weights, blended. Defaults to `None`.

    Returns:
        `(x, y)`, `(x, y, sample_weight)` or the dict element, mixed, with
        float labels (as given with `mix_labels=False`).

    Raises:
        ValueError: for an invalid option, or at trace time for an element
            of another form, labels that do not fit `num_classes`, or
            string, ragged or rank-0 inputs.
        tf.errors.InvalidArgumentError: at run time for class ids outside
            `[0, num_classes)` or differing batch sizes.

    Example:

    ```python
    x = np.random.rand(32, 8, 8, 3).astype("float32")
    y = np.random.randint(0, 10, size=32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    ds = ds.map(keras_mixup.Mixup(alpha=0.2, num_classes=10, seed=1))
    images, labels = next(iter(ds))
    assert images.shape == (8, 8, 8, 3) and labels.shape == (8, 10)
    ```
    """

    def __init__(self, alpha=0.2, **options):
        self.hold_engine("Mixup", ALL_OPTIONS, {"alpha": alpha}, options)
        self.engine.prepare_tensorflow()

    def for_input_context(self, input_context):
        """Returns a copy that draws its own stream for one input pipeline.

        Under `tf.distribute`, `strategy.distribute_datasets_from_function`
        calls `dataset_fn(input_context)` once per input pipeline (once per
        worker by default). Pipelines with the same integer `seed` would
        draw the same lam and partners; the copy folds
        `input_context.input_pipeline_id` into every seed, so each pipeline
        draws differently while the whole run stays reproducible. Call it
        inside `dataset_fn`. The copy has the same `get_config()`.

        Args:
            input_context: the `tf.distribute.InputContext` passed to
                `dataset_fn`.

        Returns:
            A new `Mixup` with the same arguments and its own seed stream.

        Raises:
            ValueError: if `input_context` is not a
                `tf.distribute.InputContext`.

        Example:

        ```python
        mixup = keras_mixup.Mixup(alpha=0.2, num_classes=10, seed=1)

        def dataset_fn(input_context):
            x = np.random.rand(64, 8).astype("float32")
            y = np.random.randint(0, 10, size=64)
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            ds = ds.shard(input_context.num_input_pipelines,
                          input_context.input_pipeline_id)
            batch = input_context.get_per_replica_batch_size(16)
            return ds.batch(batch).map(mixup.for_input_context(input_context))

        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=1)
        images, labels = next(iter(dataset_fn(context)))
        assert images.shape == (16, 8) and labels.shape == (16, 10)
        ```
        """
        if not isinstance(input_context, tf.distribute.InputContext):
            raise ValueError(
                "`input_context` must be the tf.distribute.InputContext "
                "passed to the `dataset_fn` of "
                "`strategy.distribute_datasets_from_function`; received "
                f"{input_context!r}."
            )
        copy = type(self).from_config(self.get_config())
        copy.engine = self.engine.with_input_pipeline(
            input_context.input_pipeline_id
        )
        return copy

    @backend.on_tensorflow
    def draw(self, batch_size, x=None, y=None, **kwargs):
        """Draws a batch's `(lam, partner_index)`: each example's label
        weight (its mixup lam, or the fraction of its pixels a cut keeps)
        and its partner. The variant's own parameters (boxes, masks) are
        in `self.engine.draw`'s `keras_mixup.variants.Draw`."""
        return tuple(self.engine.draw(batch_size, x, y, **kwargs)[:2])

    @backend.on_tensorflow
    def mix(
        self,
        x,
        y=None,
        sample_weight=None,
        *,
        partner_x=None,
        partner_y=None,
        partner_sample_weight=None,
    ):
        """Mixes one batch; returns `(x, y, sample_weight)`, `None` kept.

        With `partner_x`, the batch is mixed with that partner batch
        instead of with itself (see `keras_mixup.mix_with`).
        """
        if partner_x is None:
            if partner_y is not None or partner_sample_weight is not None:
                raise ValueError(
                    "`partner_y` and `partner_sample_weight` need "
                    "`partner_x`; received partner_x=None."
                )
            return self.engine.mix(x, y, sample_weight)
        return partners.mix_with_partner(
            self.engine,
            x,
            y,
            sample_weight,
            partner_x=partner_x,
            partner_y=partner_y,
            partner_weight=partner_sample_weight,
        )

    def __new__(cls, *args, **kwargs):
        checks.check_constructed(cls.__name__, args)
        return super().__new__(cls)

    def __call__(self, x, y=_ONLY_X, sample_weight=None, *rest):
        if rest:
            raise ValueError(
                f"{type(self).__name__} maps batches of the forms "
                f"{elements.FORMS}; received an element of {3 + len(rest)} "
                f"parts {elements.describe((x, y, sample_weight, *rest))}."
            )
        if y is _ONLY_X:
            return self._mix_dict(x)
        x, y, sample_weight = self.mix(x, y, sample_weight)
        if sample_weight is None:
            return x, y
        return x, y, sample_weight

    @backend.on_tensorflow
    def _mix_dict(self, element):
        if not isinstance(element, dict):
            raise ValueError(
                f"{type(self).__name__} maps batches of the forms "
                f"{elements.FORMS}; received a single element "
                f"{elements.describe(element)}."
            )
        return elements.mix_dict(
            self.engine,
            element,
            type(self).__name__,
            inputs_only=not self.engine.options["mix_labels"],
        )

    def get_config(self):
        """The constructor arguments.

        Raises:
            ValueError: if `knn_features` is a callable Keras cannot
                serialise by name.
        """
        return self.engine.settings.get_config()

    @classmethod
    def from_config(cls, config):
        return cls(**Settings.options_from_config(config))

    def __repr__(self):
        return f"{type(self).__name__}({self.engine.settings.describe()})"


Mixup.__doc__ = options.document_options(Mixup.__doc__, ALL_OPTIONS[1:])


def map_function_options(variant_class):
    """The options of a variant's own `tf.data` map function (such as
    `CutMix`): every option of `Mixup` but the choice of variant, the
    inputs-only form (kept for a variant that has it), the other variants'
    options and its own alpha (the function's `alpha`), and `mask_rule`
    unless it mixes padded sequences."""
    others = {
        option.name
        for cls in variants.REGISTRY.values()
        if cls is not variant_class
        for option in cls.options
    }
    left_out = {"variant", variant_class.alpha_option, *others}
    if not variant_class.inputs_only_form:
        left_out.add("mix_labels")
    if variants.base.PADDING_MASK not in variant_class.takes:
        left_out.add("mask_rule")  # it mixes no padded sequences
    return tuple(name for name in ALL_OPTIONS if name not in left_out)


class _VariantMapFunction(Mixup):
    """A variant's own `tf.data` map function (`CutMix`, `FMix`, ...):
    `Mixup` with the variant fixed, taking `map_function_options` of it.
    The variant's options named `<variant>_<name>` are the function's
    arguments `<name>`, given, saved, printed and named in errors so
    (`CutMix(minmax=...)` sets `cutmix_minmax`); the function's `alpha`
    is the variant's Beta concentration, for a variant that draws lam
    (one with an `alpha_option`)."""

    variant_name = None
    #: Options of the variant that the function leaves to `Mixup`.
    left_to_mixup = ()
    #: What the function returns in which dtype, for its docstring.
    returned = "labels as floats, pasted images in their own dtype"
    #: The function's construction in its docstring's example.
    example = None

    @classmethod
    def accepted(cls):
        """The option names the function takes."""
        variant = variants.REGISTRY[cls.variant_name]
        takes_alpha = variant.alpha_option is not None  # a Beta draw of lam
        return tuple(
            name
            for name in map_function_options(variant)
            if name not in cls.left_to_mixup
            and (takes_alpha or name != "alpha")
        )

    @classmethod
    def renamed(cls):
        """`{option: argument}` of the variant's prefixed options."""
        prefix = f"{cls.variant_name}_"
        return {
            name: name[len(prefix) :]
            for name in cls.accepted()
            if name.startswith(prefix)
        }

    def __init__(self, **arguments):
        to_option = {arg: name for name, arg in self.renamed().items()}
        given = {to_option.get(k, k): v for k, v in arguments.items()}
        name = type(self).__name__
        fixed = {"variant": self.variant_name}
        try:
            self.hold_engine(name, self.accepted(), {}, given, fixed=fixed)
        except ValueError as error:  # named as the user gives them
            raise ValueError(self._as_arguments(str(error))) from None
        self.engine.prepare_tensorflow()

    @classmethod
    def _as_arguments(cls, text):
        for name, argument in cls.renamed().items():
            text = re.sub(rf"\b{name}\b", argument, text)
        return text

    def get_config(self):
        """The constructor arguments."""
        config = self.engine.settings.get_config()
        renamed = self.renamed()
        return {renamed.get(k, k): v for k, v in config.items()}

    @classmethod
    def from_config(cls, config):
        to_option = {arg: name for name, arg in cls.renamed().items()}
        config = {to_option.get(k, k): v for k, v in config.items()}
        fixed = {"variant": cls.variant_name}
        config = Settings.options_from_config(config, fixed=fixed)
        renamed = cls.renamed()
        return cls(**{renamed.get(k, k): v for k, v in config.items()})

    def __repr__(self):
        described = self._as_arguments(self.engine.settings.describe())
        return f"{type(self).__name__}({described})"

    @classmethod
    def finish(cls, *explicit):
        """Completes the class: each argument renamed from an option as a
        read-only attribute, and the `{options}` line of its docstring
        filled with the options not documented by hand (`explicit`, by
        argument name), less the box options of a variant that refuses
        boxes."""
        for name, argument in cls.renamed().items():
            doc = f"The `{argument}` argument: {options.OPTIONS[name].doc}"
            getter = property(lambda self, name=name: self.engine.options[name])
            setattr(cls, argument, property(getter.fget, doc=doc))
        variant = variants.REGISTRY[cls.variant_name]
        takes_boxes = "bounding_boxes" in variant.takes
        names = [
            name
            for name in cls.accepted()
            if cls.renamed().get(name, name) not in ("alpha", *explicit)
            and (takes_boxes or name not in _BOX_OPTIONS)
        ]
        doc = options.document_options(cls.__doc__, names, cls.renamed())
        call = _CALL_ARGUMENTS.format(returned=cls.returned)
        doc = doc.replace("    {call_arguments}\n", call)
        example = _EXAMPLE.format(example=cls.example)
        cls.__doc__ = doc.replace("    {example}\n", example)


#: The call arguments and return value of every variant's map function,
#: for its docstring (`returned`: the class's dtypes of what it returns).
_CALL_ARGUMENTS = """\
    Call arguments:
        x: the inputs (as `keras_mixup.Mixup`), or keras's dict element.
        y: the labels; left out only for the dict element.
        sample_weight: optional weights, blended. Defaults to `None`.

    Returns:
        `(x, y)`, `(x, y, sample_weight)` or the dict element, mixed;
        {returned}.
"""

#: The example of every variant's map function: images filled with their
#: index, and labels that are each source's fraction of the pixels.
_EXAMPLE = """\
    Example:

    ```python
    x = np.arange(8, dtype="float32")[:, None, None, None] * np.ones(
        (8, 32, 32, 3), "float32")  # each image filled with its index
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(8))).batch(8)
    ds = ds.map(keras_mixup.{example})
    images, labels = next(iter(ds))
    fractions = [np.mean(images.numpy() == i, axis=(1, 2, 3))
                 for i in range(8)]
    np.testing.assert_allclose(np.stack(fractions, 1), labels, atol=1e-6)
    ```
"""

#: The options that apply to boxes only (not documented for a variant
#: that refuses boxes).
_BOX_OPTIONS = ("bounding_box_format", "min_box_visibility")


@keras.saving.register_keras_serializable(package="keras_mixup")
class CutMix(_VariantMapFunction):
    """Cuts and pastes boxes between images in a `tf.data` pipeline (CutMix,
    Yun et al., ICCV 2019).

    For each example (`mode="elem"`) or batch (`mode="batch"`), a box of
    area about 1 - lam, lam ~ Beta(alpha, alpha), is filled with the
    partner's pixels, and the labels are blended with the pixels each
    example keeps. Images are `[B, H, W, C]` (or channels first), videos
    `[B, T, H, W, C]`; element forms are those of `Mixup` (guide "Variants").

    Args:
        alpha: the Beta concentration (> 0). Defaults to `1.0`.
        minmax: `None`, or `(lo, hi)` with 0 < lo <= hi <= 1, the range of
            the box's side fractions (timm's). Defaults to `None`.
        {options}

    {call_arguments}

    Raises:
        ValueError: for an invalid option; at trace time as `Mixup`, and
            for inputs with no image (rank 4 or 5) and no `axes`.

    {example}
    """

    variant_name = "cutmix"
    example = "CutMix(alpha=1.0, num_classes=8, seed=1)"
    left_to_mixup = ("switch_prob",)  # the switch is Mixup's

    def __init__(self, alpha=1.0, *, minmax=None, **kwargs):
        super().__init__(alpha=alpha, minmax=minmax, **kwargs)


@keras.saving.register_keras_serializable(package="keras_mixup")
class FMix(_VariantMapFunction):
    """Pastes a low-frequency mask of the partner's pixels into each image
    in a `tf.data` pipeline (FMix, Harris et al., arXiv:2002.12047).

    For each example (`mode="elem"`) or batch (`mode="batch"`), lam ~
    Beta(alpha, alpha); a Gaussian field whose Fourier coefficients decay
    as 1 / f ** decay_power is drawn, and the `round(lam * H * W)` pixels
    where it is largest keep the example, the others take the partner's.
    Labels are weighed by the exact fraction kept. Element forms are those
    of `CutMix`, without boxes (guide "Variants").

    Args:
        alpha: the Beta concentration (> 0). Defaults to `1.0`.
        {options}

    {call_arguments}

    Raises:
        ValueError: for an invalid option; at trace time as `CutMix`, and
            for an element with `bounding_boxes` (FMix has no box rule).

    {example}
    """

    variant_name = "fmix"
    example = "FMix(alpha=1.0, num_classes=8, seed=1)"

    def __init__(self, alpha=1.0, *, decay_power=3.0, **kwargs):
        super().__init__(alpha=alpha, decay_power=decay_power, **kwargs)


@keras.saving.register_keras_serializable(package="keras_mixup")
class GridMix(_VariantMapFunction):
    """Pastes a grid of the partner's pixels into each image in a
    `tf.data` pipeline (GridMix, Baek et al., Pattern Recognition 2021,
    with the parameters of OpenMixup's `gridmix`).

    For each example (`mode="elem"`) or batch (`mode="batch"`), lam ~
    Beta(alpha, alpha); a region of the image is split into cells, and in
    each cell a hole of sides `sqrt(1 - lam)` of the cell's takes the
    partner's pixels. Labels are weighed by the exact fraction kept.
    Element forms are those of `CutMix`, without boxes (guide "Variants").

    Args:
        alpha: the Beta concentration (> 0). Defaults to `1.0`.
        {options}

    {call_arguments}

    Raises:
        ValueError: for an invalid option; at trace time as `CutMix`, for
            an element with `bounding_boxes` (GridMix has no box rule), and
            for `axes` naming other than two axes.

    {example}
    """

    variant_name = "gridmix"
    example = "GridMix(n_holes=(2, 6), num_classes=8, seed=1)"

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(alpha=alpha, **kwargs)


@keras.saving.register_keras_serializable(package="keras_mixup")
class ResizeMix(_VariantMapFunction):
    """Pastes each partner, resized, into a box of its example in a
    `tf.data` pipeline (ResizeMix, Qin et al., arXiv:2012.11101).

    For each example (`mode="elem"`) or batch, a box of side fraction tau
    ~ U(scale), its centre uniform and clipped at the border, receives the
    whole partner resized to the box (bilinear; masks by nearest
    neighbour); labels are blended with the fraction of pixels each example
    keeps. Element forms are those of `CutMix` (guide "Variants").

    Args:
        scale: `(lo, hi)` with 0 < lo <= hi <= 1, the range of tau.
            Defaults to `(0.1, 0.8)`.
        {options}

    {call_arguments}

    Raises:
        ValueError: for an invalid option; at trace time as `CutMix`, and
            for `axes` naming other than two axes.

    {example}
    """

    variant_name = "resizemix"
    returned = "labels and images as floats, integer masks integer"
    example = "ResizeMix(scale=(0.1, 0.8), num_classes=8)"

    def __init__(self, scale=(0.1, 0.8), **kwargs):
        super().__init__(scale=scale, **kwargs)


@keras.saving.register_keras_serializable(package="keras_mixup")
class Mosaic(_VariantMapFunction):
    """Tiles each example with three partners around a centre in a
    `tf.data` pipeline (Mosaic, YOLOv4, arXiv:2004.10934).

    For each example (`mode="elem"`) or batch, a centre is drawn uniformly
    in `center` (a fraction of each side); the example fills the top-left
    tile and three partners (three draws of `pairing`) the others, each
    tile an integer-pixel crop of its source. Labels are the four sources'
    labels weighed by the tiles' areas; masks tile with the pixels; boxes
    move into their tile (guide "Variants").

    Args:
        center: `(lo, hi)` with 0 < lo <= hi <= 1, the range of the centre
            along each side. Defaults to `(0.25, 0.75)`.
        {options}

    {call_arguments}

    Raises:
        ValueError: for an invalid option; at trace time as `CutMix`, and
            for `axes` naming other than two axes.

    {example}
    """

    variant_name = "mosaic"
    returned = "labels as floats, images in their own dtype"
    example = "Mosaic(center=(0.25, 0.75), num_classes=8)"

    def __init__(self, center=(0.25, 0.75), **kwargs):
        super().__init__(center=center, **kwargs)


CutMix.finish("minmax")
FMix.finish()
GridMix.finish()
ResizeMix.finish("scale")
Mosaic.finish("center")


def mix_with(dataset, partner_dataset, alpha=0.2, seed=None, **mixup_options):
    """Mixes each batch of a dataset with a batch of a partner dataset.

    Each labelled batch `(x, y)` of `dataset` is zipped with the next batch
    of `partner_dataset` and mixed with it, by default in the inputs-only
    form: `(lam * x_i + (1 - lam) * x'_j, y_i)` with lam ~
    Beta(alpha + 1, alpha) and `x'_j` a partner-batch example. For
    cross-entropy this is mixup in expectation, and the partners need no
    labels: the partner dataset may be unlabelled data (semi-supervised
    training) or another labelled set.

    The partner dataset is repeated, so it may be shorter than `dataset`
    (or infinite); the result has `dataset`'s length. Batch sizes may
    differ: with the default random pairing the partner batch is shuffled,
    then cycled when it is smaller than the batch and trimmed when it is
    larger. Other pairings draw partners from the partner batch (the
    same-class ones and `"label_kernel"` need a labelled partner dataset).
    When both datasets carry labels, `mix_labels=True` gives ordinary mixup
    across the two (lam ~ Beta(alpha, alpha), labels blended).

    Args:
        dataset: a batched `tf.data.Dataset` of `(x, y)`,
            `(x, y, sample_weight)` or keras's dict elements
            `{"images": x, "labels": y}` (returned in the same form).
        partner_dataset: a batched `tf.data.Dataset` of `x`, `(x,)`,
            `(x, y)`, `(x, y, sample_weight)` or dicts `{"images": x}`
            (with `"labels"` or not), with `x` of the same structure,
            dtypes and per-example shapes as `dataset`'s.
        alpha: the Beta concentration, a finite number > 0. Defaults to
            `0.2`.
        seed: an int for a reproducible stream of lam and partners, or
            `None`. Defaults to `None`.
        **mixup_options: the other options of `Mixup`: `mix_labels`
            (defaults here to `False`), `num_classes`, `label_smoothing`,
            `mode`, `pairing`, `knn_k`, `knn_features`, `prob`, `fused`,
            `label_bandwidth`, and CutMix's (`cutmix_alpha` with
            `mix_labels=True`).

    Returns:
        A `tf.data.Dataset` of mixed `(x, y)` or `(x, y, sample_weight)`
        batches; with `mix_labels=False`, labels and sample weights are
        `dataset`'s own, unchanged.

    Raises:
        ValueError: if `dataset` does not yield `(x, y)` or
            `(x, y, sample_weight)`, `partner_dataset` yields no inputs
            shaped like `x` (structure, dtype or per-example shape), is
            empty, or lacks the labels that `mix_labels=True` or a
            same-class pairing need; and for any invalid `Mixup` argument.

    Example:

    ```python
    labelled = tf.data.Dataset.from_tensor_slices(
        (np.random.rand(64, 5).astype("float32"), np.arange(64) % 3)
    ).batch(16)
    unlabelled = tf.data.Dataset.from_tensor_slices(
        np.random.rand(40, 5).astype("float32")
    ).batch(10)
    ds = keras_mixup.mix_with(labelled, unlabelled, alpha=0.4, seed=1)
    x, y = next(iter(ds))
    assert x.shape == (16, 5) and y.dtype == tf.int64   # labels as given
    ```
    """
    for name, value in (
        ("dataset", dataset),
        ("partner_dataset", partner_dataset),
    ):
        if not isinstance(value, tf.data.Dataset):
            raise ValueError(
                f"`{name}` must be a tf.data.Dataset; received {value!r}."
            )
    mixup_options.setdefault("mix_labels", False)
    mixup = Mixup(alpha, seed=seed, **mixup_options)
    dataset, repack = _as_tuples(dataset)
    partner_batches = _partner_tuples(dataset.element_spec[0], partner_dataset)
    _check_partner_labels(mixup, partner_batches.element_spec, partner_dataset)
    if partner_dataset.cardinality() == 0:
        raise ValueError("`partner_dataset` is empty.")

    @backend.on_tensorflow
    def mix(element, partner):
        x, y, weight = tuple(element) + (None,) * (3 - len(element))
        partner_x, partner_y, partner_weight = tuple(partner) + (None,) * (
            3 - len(partner)
        )
        x, y, weight = partners.mix_with_partner(
            mixup.engine,
            x,
            y,
            weight,
            partner_x=partner_x,
            partner_y=partner_y,
            partner_weight=partner_weight,
        )
        return repack(x, y, weight)

    pairs = tf.data.Dataset.zip((dataset, partner_batches.repeat()))
    return _plain_map(pairs, mix)


def _is_like(structure, spec):
    """Whether `spec` has the nested structure of `structure`."""
    try:
        tf.nest.assert_same_structure(structure, spec)
    except (ValueError, TypeError):
        return False
    return True


def _plain_map(dataset, function):
    """`dataset.map(function)`, `function` called as it is (AutoGraph,
    which `Dataset.map` runs, would convert it: see
    `backend.not_converted`)."""
    return dataset.map(backend.not_converted(function))


def _as_tuples(dataset):
    """`dataset` as `(x, y[, sample_weight])` tuples, and the function
    that puts a mixed batch back in the dataset's form."""
    spec = dataset.element_spec
    if elements.is_dict_form(spec):
        key, _, _ = elements.from_dict(spec, "mix_with")
        tuples = _plain_map(dataset, lambda e: (e[key], e[elements.LABELS_KEY]))
        return tuples, lambda x, y, w: {key: x, elements.LABELS_KEY: y}
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        raise ValueError(
            f"`dataset` must yield labelled batches, {elements.FORMS}; "
            f"received elements {elements.describe(spec)}."
        )
    return dataset, lambda x, y, w: (x, y) if w is None else (x, y, w)


def _partner_tuples(x_spec, partner_dataset):
    """The partner dataset as tuples `(x,)`, `(x, y)` or `(x, y, w)`."""
    spec = partner_dataset.element_spec
    if elements.is_dict_form(spec):
        key = next(k for k in elements.INPUT_KEYS if k in spec)
        label = elements.LABELS_KEY
        if label in spec:
            partner_dataset = _plain_map(
                partner_dataset, lambda e: (e[key], e[label])
            )
        else:
            partner_dataset = _plain_map(partner_dataset, lambda e: (e[key],))
    elif _is_like(x_spec, spec) and not (
        isinstance(spec, tuple) and _is_like(x_spec, spec[0])
    ):
        partner_dataset = _plain_map(
            partner_dataset, lambda *x: (x[0] if len(x) == 1 else x,)
        )
    spec = partner_dataset.element_spec
    if not (
        isinstance(spec, tuple)
        and 1 <= len(spec) <= 3
        and _is_like(x_spec, spec[0])
    ):
        raise ValueError(
            "`partner_dataset` must yield `x`, `(x,)`, `(x, y)` or "
            "`(x, y, sample_weight)` with `x` structured like `dataset`'s "
            f"inputs {elements.describe(x_spec)}; received elements "
            f"{elements.describe(spec)}."
        )
    _check_partner_inputs(x_spec, spec[0])
    return partner_dataset


def _check_partner_inputs(x_spec, partner_x_spec):
    for ours, theirs in zip(
        tf.nest.flatten(x_spec), tf.nest.flatten(partner_x_spec), strict=True
    ):
        if ours.dtype != theirs.dtype or not ours.shape[1:].is_compatible_with(
            theirs.shape[1:]
        ):
            raise ValueError(
                "`partner_dataset` inputs must match `dataset`'s in dtype "
                "and per-example shape; received "
                f"{elements.describe(partner_x_spec)} for "
                f"{elements.describe(x_spec)}."
            )


def _check_partner_labels(mixup, spec, partner_dataset):
    """Refuses an unlabelled partner dataset where labels are needed."""
    if len(spec) >= 2:
        return
    given = elements.describe(partner_dataset.element_spec)
    if mixup.mix_labels:
        raise ValueError(
            "`mix_labels=True` blends labels, but `partner_dataset` "
            f"yields no labels (elements {given}); use the default "
            "`mix_labels=False` for unlabelled partners."
        )
    if mixup.pairing in pairing.LABEL_PAIRINGS:
        raise ValueError(
            f"`pairing={mixup.pairing!r}` needs labels on both sides, "
            f"but `partner_dataset` yields no labels (elements {given})."
        )
