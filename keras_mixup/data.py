"""`Mixup`, the `tf.data` map function, and `mix_with`, mixing a dataset
with batches of another."""

import keras
import tensorflow as tf

from keras_mixup import mixing, sampling
from keras_mixup import pairing as pairing_module

MODES = ("elem", "batch")


def deserialize_knn_features(config):
    """Inverse of `_serialize_knn_features`: a callable, or `None`."""
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return config


def _serialize_knn_features(knn_features):
    """`knn_features` for `get_config`: only registered functions."""
    if knn_features is None:
        return None
    registered = False
    if not isinstance(knn_features, keras.Layer):
        try:
            name = keras.saving.get_registered_name(knn_features)
            registered = (
                keras.saving.get_registered_object(name) is knn_features
            )
        except (AttributeError, TypeError):
            registered = False
        if not registered and hasattr(knn_features, "get_config"):
            # An instance of a registered class, such as
            # `keras_mixup.pairing.CountSketch`.
            kind = type(knn_features)
            name = keras.saving.get_registered_name(kind)
            registered = keras.saving.get_registered_object(name) is kind
    if registered:
        return keras.saving.serialize_keras_object(knn_features)
    raise ValueError(
        "`knn_features` can only be saved in a config when it is a function "
        "registered with `@keras.saving.register_keras_serializable()` (a "
        "registered function may call a model) or an instance of a "
        "registered class with `get_config` (such as "
        "`keras_mixup.pairing.CountSketch`); lambdas, unregistered "
        "functions, layers and models (whose weights a config would not "
        f"carry) are not serialised. Received {knn_features!r}."
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


def _concat(structure, partner):
    return tf.nest.map_structure(
        lambda a, b: tf.concat([a, b], axis=0), structure, partner
    )


def _head(structure, size):
    return tf.nest.map_structure(lambda t: t[:size], structure)


@keras.saving.register_keras_serializable(package="keras_mixup")
class Mixup:
    """Mixes batches in a `tf.data` pipeline (mixup, Zhang et al. 2018).

    Each batch `(x, y)` becomes `(lam * x + (1 - lam) * x[p],
    lam * y + (1 - lam) * y[p])` with `p` a random permutation of the batch
    and lam ~ Beta(alpha, alpha), drawn fresh for every batch and epoch
    inside the graph with stateless TensorFlow Probability sampling. It is
    pure TensorFlow, so it works in `Dataset.map` whatever `KERAS_BACKEND`
    is set, and can be called eagerly on tensors too.

    Args:
        alpha: the Beta concentration, a finite number > 0. Small values
            (0.1 to 0.4) mix gently; 1 gives a uniform lam. Defaults to
            `0.2`.
        num_classes: the number of classes, needed to one-hot encode
            integer labels (class ids of shape `[B]` or `[B, 1]`); float
            labels (one-hot, soft, multi-label, regression) are blended as
            they are. Defaults to `None`.
        label_smoothing: label smoothing in [0, 1), applied before
            blending. Defaults to `0.0`.
        mode: `"elem"` for one lam per example, `"batch"` for one lam per
            batch (the paper's reference code). Defaults to `"elem"`.
        pairing: who is mixed with whom: `"random"` (a random permutation,
            the paper's choice), `"same_class"` (a partner of the same
            class; an example alone in its class comes back unmixed),
            `"knn"` (a partner drawn uniformly among the `knn_k` nearest
            neighbours in the batch) or `"same_class_knn"` (among the
            nearest of the same class). Computed inside the graph. Defaults
            to `"random"`.
        knn_k: the number of nearest neighbours for the `"knn"` pairings,
            an int >= 1, clamped to batch size - 1. Defaults to `5`.
        knn_features: for the `"knn"` pairings, a callable mapping the
            batch's inputs to feature vectors (such as a model's
            embedding); `None` compares the flattened inputs. `get_config`
            only serialises it if it is a function registered with
            `keras.saving.register_keras_serializable` and raises
            `ValueError` otherwise. Defaults to `None`.
        mix_labels: `True` for mixup (lam ~ Beta(alpha, alpha), labels
            blended); `False` for the inputs-only form: lam ~
            Beta(alpha + 1, alpha), `(lam * x_i + (1 - lam) * x_j, y_i)`,
            labels and sample weights returned exactly as given (integer
            ids stay integers). Both train the same model in expectation
            for cross-entropy; only `True` is right for losses that are not
            linear in the label (mean squared error). Defaults to `True`.
        prob: the probability that a batch is mixed at all, in [0, 1]
            (drawn per batch, from the batch's seed). An unmixed batch
            comes back as given: inputs unchanged bit for bit, labels
            encoded and smoothed as for a mixed one. Defaults to `1.0`.
        seed: an int for a reproducible stream of lam and partners (batch
            after batch, when the dataset is mapped without parallelism),
            or `None`. With several input pipelines under `tf.distribute`,
            map each with `for_input_context`. Defaults to `None`.
        fused: how the blend runs: `True` compiles it with XLA
            (`tf.function(jit_compile=True)`: the cast of integer inputs,
            the gather of the partners, the multiply and the add fused into
            one pass over the batch: 1.4 to 4 times faster than plain ops
            on CPU), `False` runs plain TensorFlow ops, `"auto"` uses XLA
            in a `Dataset.map` or any graph where the platform has it, and
            plain ops when called eagerly (see the README's performance
            section). The two agree up to rounding (XLA fuses the
            multiply-add into one rounding). Defaults to `"auto"`.

    Call arguments:
        x: the inputs: a batch-first tensor of rank >= 1, or a tuple or
            dict of them. Integer inputs (such as uint8 images) are blended
            in the Keras compute dtype; float ones keep their dtype.
        y: the labels.
        sample_weight: optional per-example weights, blended with the same
            lam and partners.

    Returns:
        `(x, y)`, or `(x, y, sample_weight)` when weights are given, mixed,
        with the structure of `x` kept. Labels come back as floats (as
        given with `mix_labels=False`). A batch of one example comes back
        unchanged (labels encoded); an empty batch comes back empty, with
        the same shapes and dtypes. Mixing creates no NaN or inf (for any
        float16 input, and bfloat16, float32 or float64 inputs below half
        the largest value, 1.7e38 for float32); a NaN or inf in an example
        reaches only the rows that mix it.

    Raises:
        ValueError: at construction for an invalid argument (also
            `label_smoothing` with `mix_labels=False`: labels are not
            touched then); at trace time for integer labels without
            `num_classes`, string, ragged or rank-0 inputs, differing static
            batch sizes, or a same-class pairing without labels.
        tf.errors.InvalidArgumentError: at run time for labels outside
            `[0, num_classes)` or differing dynamic batch sizes. Under XLA
            (`jit_compile=True`) these run-time checks are compiled out: an
            out-of-range class id then encodes to an all-zero label row.

    Example:

    ```python
    x = np.random.rand(32, 8, 8, 3).astype("float32")
    y = np.random.randint(0, 10, size=32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    ds = ds.map(keras_mixup.Mixup(alpha=0.2, num_classes=10, seed=1))
    images, labels = next(iter(ds))
    assert images.shape == (8, 8, 8, 3) and labels.shape == (8, 10)
    ```

    Same-class partners, inputs only (labels come back as given):

    ```python
    mixup = keras_mixup.Mixup(alpha=0.2, pairing="same_class",
                              mix_labels=False, seed=1)
    x = np.random.rand(6, 4).astype("float32")
    y = np.array([0, 0, 1, 1, 2, 2])
    mixed_x, same_y = mixup(x, y)
    np.testing.assert_array_equal(same_y, y)
    ```
    """

    def __init__(
        self,
        alpha=0.2,
        *,
        num_classes=None,
        label_smoothing=0.0,
        mode="elem",
        pairing="random",
        knn_k=5,
        knn_features=None,
        mix_labels=True,
        prob=1.0,
        seed=None,
        fused="auto",
    ):
        self.alpha = sampling.check_alpha(alpha)
        self.num_classes = mixing.check_num_classes(num_classes)
        self.label_smoothing = mixing.check_label_smoothing(label_smoothing)
        if mode not in MODES:
            raise ValueError(
                f"`mode` must be one of {MODES} (one lam per example or per "
                f"batch); received {mode!r}."
            )
        self.mode = mode
        self.pairing = pairing_module.check_pairing(pairing)
        self.knn_k = pairing_module.check_knn_k(knn_k)
        self.knn_features = pairing_module.check_knn_features(knn_features)
        if not isinstance(mix_labels, bool):
            raise ValueError(
                f"`mix_labels` must be True or False; received {mix_labels!r}."
            )
        if not mix_labels and self.label_smoothing:
            raise ValueError(
                "`label_smoothing` has no effect with `mix_labels=False` "
                "(labels are returned as given); received "
                f"label_smoothing={label_smoothing!r}. Smooth the labels in "
                "the loss instead."
            )
        self.mix_labels = mix_labels
        #: What `keras_mixup.MixupSchedule` changes: the switch and alpha.
        self.mixing_state = sampling.MixingState(self.alpha, prob)
        self.prob = self.mixing_state.prob
        self.seed = seed
        self.seed_source = sampling.SeedSource(seed)
        self.fused = mixing.check_fused(fused)

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
        copy.seed_source = sampling.SeedSource(
            self.seed, input_pipeline_id=input_context.input_pipeline_id
        )
        return copy

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
        """Draws this batch's lam and partner index.

        Args:
            batch_size: the batch size, an int or a scalar int tensor.
            x: the batch's inputs, for pairings that look at them.
            y: the batch's labels, for pairings that look at them.
            inputs_only: draw lam from Beta(alpha + 1, alpha), for mixing
                inputs only (labels kept). Defaults to `None`, which means
                `not mix_labels`.
            partner_x: a partner batch to draw partners from, or `None` for
                the batch itself. Defaults to `None`.
            partner_y: the partner batch's labels, for the same-class
                pairings. Defaults to `None`.

        Returns:
            `(lam, partner_index)`: lam float32 of shape `[batch_size]`
            (`[]` in `"batch"` mode), partner_index int32 of shape
            `[batch_size]`. With `partner_x`, the index points into the
            concatenation of the batch and the partner batch (see
            `keras_mixup.pairing`). A batch that is not mixed (switched
            off by a `keras_mixup.MixupSchedule`, or not drawn with
            probability `prob`) gets lam 1 and each example as its own
            partner (`range(batch_size)`): the blend returns it exactly.
        """
        if inputs_only is None:
            inputs_only = not self.mix_labels
        # The first two seeds of a 3-way split are those of a 2-way one.
        lam_seed, partner_seed, apply_seed = sampling.split_seed(
            self.seed_source.next_seed(), 3
        )
        state = self.mixing_state
        shape = [batch_size] if self.mode == "elem" else []
        lam = sampling.sample_lambda(
            shape, state.alpha, lam_seed, inputs_only=inputs_only
        )
        partner_index = pairing_module.partner_index(
            self.pairing,
            batch_size,
            partner_seed,
            inputs=x,
            labels=y,
            partner_inputs=partner_x,
            partner_labels=partner_y,
            knn_k=self.knn_k,
            knn_features=self.knn_features,
        )
        # Not mixing (switched off, or not drawn with `prob`): lam 1 and
        # each example its own partner, which the blend returns exactly.
        mixed = state.decide(apply_seed)
        lam = tf.where(mixed, lam, tf.ones_like(lam))
        partner_index = tf.where(
            mixed,
            partner_index,
            tf.range(tf.shape(partner_index)[0], dtype=partner_index.dtype),
        )
        return lam, partner_index

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
        instead of with itself (see `keras_mixup.mix_with`): partners are
        drawn from it by the pairing (random pairing cycles or trims it to
        the batch size); it must match `x` in structure, dtype and
        per-example shape. Labels are blended only with `mix_labels=True`,
        which then needs `partner_y` too; missing sample weights on one side
        count as 1.
        """
        x, y, sample_weight, size = mixing.check_batch(x, y, sample_weight)
        if partner_x is None:
            if partner_y is not None or partner_sample_weight is not None:
                raise ValueError(
                    "`partner_y` and `partner_sample_weight` need "
                    "`partner_x`; received partner_x=None."
                )
            lam, partner_index = self.draw(size, x, y)
            x, mixed_y, mixed_weight = mixing.mix_batch(
                x,
                y,
                sample_weight,
                lam,
                partner_index,
                num_classes=self.num_classes,
                label_smoothing=self.label_smoothing,
                mix_labels=self.mix_labels,
            )
            if not self.mix_labels:
                return x, y, sample_weight
            return x, mixed_y, mixed_weight
        return self._mix_with_partner(
            x,
            y,
            sample_weight,
            size,
            partner_x,
            partner_y,
            partner_sample_weight,
        )

    def _mix_with_partner(
        self,
        x,
        y,
        sample_weight,
        size,
        partner_x,
        partner_y,
        partner_sample_weight,
    ):
        """Mixes a batch with a partner batch: the two are concatenated,
        the partner rows map to themselves, and the batch's rows are
        sliced back out of the one core blend."""
        partner_x, partner_y, partner_sample_weight, partner_size = (
            mixing.check_batch(
                partner_x, partner_y, partner_sample_weight, prefix="partner_"
            )
        )
        _check_partner(x, partner_x, "x")
        if self.mix_labels and y is not None:
            if partner_y is None:
                raise ValueError(
                    "`mix_labels=True` blends labels, so the partner batch "
                    "needs labels too; received partner labels None. Use "
                    "`mix_labels=False` (the inputs-only form) for unlabelled "
                    "partners."
                )
            _check_partner(y, partner_y, "y")
        lam, partner_index = self.draw(
            size, x, y, partner_x=partner_x, partner_y=partner_y
        )
        full_index = tf.concat(
            [partner_index, tf.range(size, size + partner_size)], axis=0
        )
        if self.mode == "elem":
            lam = tf.concat([lam, tf.ones([partner_size], lam.dtype)], axis=0)
        if not self.mix_labels:
            mixed_x, _, _ = mixing.mix_batch(
                _concat(x, partner_x),
                None,
                None,
                lam,
                full_index,
                mix_labels=False,
            )
            return _head(mixed_x, size), y, sample_weight
        all_y = None if y is None else _concat(y, partner_y)
        all_weight = None
        if sample_weight is not None or partner_sample_weight is not None:
            weights = []
            for weight, rows in (
                (sample_weight, size),
                (partner_sample_weight, partner_size),
            ):
                if weight is None:
                    weight = tf.ones([rows], keras.config.floatx())
                elif not weight.dtype.is_floating:
                    weight = tf.cast(weight, keras.config.floatx())
                weights.append(weight)
            if weights[0].dtype != weights[1].dtype:
                weights[1] = tf.cast(weights[1], weights[0].dtype)
            _check_partner(weights[0], weights[1], "sample_weight")
            all_weight = tf.concat(weights, axis=0)
        mixed = mixing.mix_batch(
            _concat(x, partner_x),
            all_y,
            all_weight,
            lam,
            full_index,
            num_classes=self.num_classes,
            label_smoothing=self.label_smoothing,
            fused=self.fused,
        )
        return tuple(
            None if part is None else _head(part, size) for part in mixed
        )

    def __call__(self, x, y, sample_weight=None):
        x, y, sample_weight = self.mix(x, y, sample_weight)
        if sample_weight is None:
            return x, y
        return x, y, sample_weight

    def get_config(self):
        """The constructor arguments.

        Raises:
            ValueError: if `knn_features` is a callable Keras cannot
                serialise by name (see the class docstring).
        """
        return {
            "alpha": self.alpha,
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
            "mode": self.mode,
            "pairing": self.pairing,
            "knn_k": self.knn_k,
            "knn_features": _serialize_knn_features(self.knn_features),
            "mix_labels": self.mix_labels,
            "prob": self.prob,
            "seed": self.seed,
            "fused": self.fused,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["knn_features"] = deserialize_knn_features(
            config.get("knn_features")
        )
        return cls(**config)

    def __repr__(self):
        names = (
            "alpha",
            "num_classes",
            "label_smoothing",
            "mode",
            "pairing",
            "knn_k",
            "knn_features",
            "mix_labels",
            "prob",
            "seed",
        )
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in names)
        return f"{type(self).__name__}({args})"


def _is_like(structure, spec):
    """Whether `spec` has the nested structure of `structure`."""
    try:
        tf.nest.assert_same_structure(structure, spec)
    except (ValueError, TypeError):
        return False
    return True


def _describe(spec):
    return tf.nest.map_structure(
        lambda s: f"{s.dtype.name}{list(s.shape)}", spec
    )


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
    same-class ones need a labelled partner dataset). When both datasets
    carry labels, `mix_labels=True` gives ordinary mixup across the two
    (lam ~ Beta(alpha, alpha), labels blended).

    Args:
        dataset: a batched `tf.data.Dataset` of `(x, y)` or
            `(x, y, sample_weight)`.
        partner_dataset: a batched `tf.data.Dataset` of `x`, `(x,)`,
            `(x, y)` or `(x, y, sample_weight)`, with `x` of the same
            structure, dtypes and per-example shapes as `dataset`'s.
        alpha: the Beta concentration, a finite number > 0. Defaults to
            `0.2`.
        seed: an int for a reproducible stream of lam and partners, or
            `None`. Defaults to `None`.
        **mixup_options: other `Mixup` arguments: `mix_labels` (defaults
            here to `False`), `num_classes`, `label_smoothing`, `mode`,
            `pairing`, `knn_k`, `knn_features`.

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
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            f"`dataset` must be a tf.data.Dataset; received {dataset!r}."
        )
    if not isinstance(partner_dataset, tf.data.Dataset):
        raise ValueError(
            "`partner_dataset` must be a tf.data.Dataset; received "
            f"{partner_dataset!r}."
        )
    mixup_options.setdefault("mix_labels", False)
    mixup = Mixup(alpha, seed=seed, **mixup_options)
    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) in (2, 3)):
        raise ValueError(
            "`dataset` must yield labelled batches `(x, y)` or "
            f"`(x, y, sample_weight)`; received elements {_describe(spec)}."
        )
    x_spec = spec[0]
    partner_spec = partner_dataset.element_spec
    if (
        isinstance(partner_spec, tuple)
        and 1 <= len(partner_spec) <= 3
        and _is_like(x_spec, partner_spec[0])
    ):
        tupled = True
    elif _is_like(x_spec, partner_spec):
        tupled = False
    else:
        raise ValueError(
            "`partner_dataset` must yield `x`, `(x,)`, `(x, y)` or "
            "`(x, y, sample_weight)` with `x` structured like `dataset`'s "
            f"inputs {_describe(x_spec)}; received elements "
            f"{_describe(partner_spec)}."
        )
    partner_x_spec = partner_spec[0] if tupled else partner_spec
    for ours, theirs in zip(
        tf.nest.flatten(x_spec), tf.nest.flatten(partner_x_spec), strict=True
    ):
        if ours.dtype != theirs.dtype or not ours.shape[1:].is_compatible_with(
            theirs.shape[1:]
        ):
            raise ValueError(
                "`partner_dataset` inputs must match `dataset`'s in dtype "
                "and per-example shape; received "
                f"{_describe(partner_x_spec)} for {_describe(x_spec)}."
            )
    partner_has_labels = tupled and len(partner_spec) >= 2
    if not partner_has_labels:
        if mixup.mix_labels:
            raise ValueError(
                "`mix_labels=True` blends labels, but `partner_dataset` "
                f"yields no labels (elements {_describe(partner_spec)}); use "
                "the default `mix_labels=False` for unlabelled partners."
            )
        if mixup.pairing in pairing_module.LABEL_PAIRINGS:
            raise ValueError(
                f"`pairing={mixup.pairing!r}` needs labels on both sides, "
                "but `partner_dataset` yields no labels (elements "
                f"{_describe(partner_spec)})."
            )
    if partner_dataset.cardinality() == 0:
        raise ValueError("`partner_dataset` is empty.")

    def split(element):
        if not tupled:
            return element, None, None
        parts = tuple(element) + (None,) * (3 - len(element))
        return parts

    def mix(element, partner):
        x, y, sample_weight = tuple(element) + (None,) * (3 - len(element))
        partner_x, partner_y, partner_weight = split(partner)
        x, y, sample_weight = mixup.mix(
            x,
            y,
            sample_weight,
            partner_x=partner_x,
            partner_y=partner_y,
            partner_sample_weight=partner_weight,
        )
        if sample_weight is None:
            return x, y
        return x, y, sample_weight

    partners = partner_dataset.repeat()
    return tf.data.Dataset.zip((dataset, partners)).map(mix)
