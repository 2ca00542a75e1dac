"""`Mixup`, the `tf.data` map function."""

import keras
import tensorflow as tf

from keras_mixup import mixing, pairing, sampling

MODES = ("elem", "batch")


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
        seed: an int for a reproducible stream of lam and partners (batch
            after batch, when the dataset is mapped without parallelism),
            or `None`. With several input pipelines under `tf.distribute`,
            map each with `for_input_context`. Defaults to `None`.

    Call arguments:
        x: the inputs: a batch-first tensor of rank >= 1, or a tuple or
            dict of them. Integer inputs (such as uint8 images) are blended
            in the Keras compute dtype; float ones keep their dtype.
        y: the labels.
        sample_weight: optional per-example weights, blended with the same
            lam and partners.

    Returns:
        `(x, y)`, or `(x, y, sample_weight)` when weights are given, mixed,
        with the structure of `x` kept. Labels come back as floats. A batch
        of one example comes back unchanged (labels encoded); an empty batch
        comes back empty, with the same shapes and dtypes. Mixing creates
        no NaN or inf (for any float16 input, and bfloat16, float32 or
        float64 inputs below half the largest value, 1.7e38 for float32);
        a NaN or inf in an example reaches only the rows that mix it.

    Raises:
        ValueError: at construction for an invalid argument; at trace time
            for integer labels without `num_classes`, string, ragged or
            rank-0 inputs, or differing static batch sizes.
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
    """

    def __init__(
        self,
        alpha=0.2,
        *,
        num_classes=None,
        label_smoothing=0.0,
        mode="elem",
        seed=None,
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
        self.seed = seed
        self.seed_source = sampling.SeedSource(seed)

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

    def draw(self, batch_size, x=None, y=None, *, inputs_only=False):
        """Draws this batch's lam and partner index.

        Args:
            batch_size: the batch size, an int or a scalar int tensor.
            x: the batch's inputs, for pairings that look at them.
            y: the batch's labels, for pairings that look at them.
            inputs_only: draw lam from Beta(alpha + 1, alpha), for mixing
                inputs only (labels kept). Defaults to `False`.

        Returns:
            `(lam, partner_index)`: lam float32 of shape `[batch_size]`
            (`[]` in `"batch"` mode), partner_index int32 of shape
            `[batch_size]`.
        """
        lam_seed, partner_seed = sampling.split_seed(
            self.seed_source.next_seed()
        )
        shape = [batch_size] if self.mode == "elem" else []
        lam = sampling.sample_lambda(
            shape, self.alpha, lam_seed, inputs_only=inputs_only
        )
        partner_index = pairing.partner_index(
            "random", batch_size, partner_seed, inputs=x, labels=y
        )
        return lam, partner_index

    def mix(self, x, y=None, sample_weight=None):
        """Mixes one batch; returns `(x, y, sample_weight)`, `None` kept."""
        x = mixing.check_structure(x, "x")
        if y is not None:
            y = mixing.check_structure(y, "y")
        if sample_weight is not None:
            sample_weight = mixing.check_structure(
                sample_weight, "sample_weight"
            )
        size = mixing.batch_size(x, y, sample_weight)
        lam, partner_index = self.draw(size, x, y)
        return mixing.mix_batch(
            x,
            y,
            sample_weight,
            lam,
            partner_index,
            num_classes=self.num_classes,
            label_smoothing=self.label_smoothing,
        )

    def __call__(self, x, y, sample_weight=None):
        x, y, sample_weight = self.mix(x, y, sample_weight)
        if sample_weight is None:
            return x, y
        return x, y, sample_weight

    def get_config(self):
        return {
            "alpha": self.alpha,
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
            "mode": self.mode,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
