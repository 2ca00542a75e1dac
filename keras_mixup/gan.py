"""`MixupGAN`: a GAN whose discriminator is trained with mixup."""

import keras

from keras_mixup import backend, blending, checks, engine
from keras_mixup.backend import tf
from keras_mixup.state import SeedSource, as_seed

__all__ = ["MixupGAN"]

#: The options a MixupGAN takes.
GAN_OPTIONS = ("alpha", "seed", "prob")


def _check_model(model, name):
    if not isinstance(model, keras.layers.Layer):
        raise ValueError(
            f"`{name}` must be a Keras model or layer; received {model!r} of "
            f"type {type(model).__name__}."
        )
    return model


def _logits(logits):
    """Flattens the discriminator output `[B, 1]` or `[B]` to `[B]`."""
    logits = tf.convert_to_tensor(logits)
    if logits.shape.rank == 2:
        logits = tf.squeeze(logits, axis=-1)
    return tf.cast(logits, "float32")


def _bce(targets, logits):
    """Mean binary cross-entropy of logits against (soft) targets."""
    targets = tf.cast(targets, logits.dtype)
    return tf.reduce_mean(
        tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    )


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupGAN(keras.Model):
    """A GAN whose discriminator is trained with mixup (Zhang et al. 2018).

    At every step the discriminator sees `lam * x_real + (1 - lam) * G(z)`:
    real example `i` blended with generated example `i` with its own
    lam ~ Beta(alpha, alpha), and is trained towards the target lam (binary
    cross-entropy on its logit, with a soft target). The generator is then
    trained with the non-saturating loss `-log sigmoid(D(G(z)))` on fresh
    noise.

    With `alpha=None` it is the plain GAN through the same code path: the
    discriminator sees the real batch with lam = 1 and the generated batch
    with lam = 0 (each example blended with itself, so exactly unchanged),
    with lam as the target. The only difference between the two is the
    mixing. In both cases the discriminator loss is the mean over the
    discriminator's batch; with alpha -> 0 the mixup loss tends to the plain
    one. A `keras_mixup.MixupSchedule` switches mixing off and on (a step
    with mixing off is a plain GAN step) or changes alpha by epoch, without
    retracing.

    The discriminator must return one logit per example (shape `[B, 1]` or
    `[B]`, no sigmoid). Calling the model on noise of shape
    `[B, latent_dim]` runs the generator, so `predict(noise)` generates
    samples; the generator also stays usable and saveable on its own.

    Args:
        generator: a Keras model mapping noise `[B, latent_dim]` to samples.
        discriminator: a Keras model mapping samples to logits `[B, 1]`.
        latent_dim: the size of the noise vector, an int >= 1. The noise is
            standard normal.
        alpha: the Beta concentration of lam, a finite number > 0, or `None`
            for the plain GAN. Defaults to `0.2` (the paper's value).
        seed: an int for a reproducible stream of noise and lam, or `None`.
            Defaults to `None`.
        prob: the probability that a discriminator step mixes, in [0, 1];
            a step that does not is a plain GAN step. Defaults to `1.0`.
        **kwargs: passed to `keras.Model` (such as `name`).

    Call arguments:
        inputs: noise of shape `[B, latent_dim]`.
        training: passed to the generator. Defaults to `None`.

    Returns:
        The generated samples.

    Raises:
        ValueError: at construction if `alpha` or `latent_dim` is invalid,
            if the generator does not accept noise of shape
            `[B, latent_dim]`, if the discriminator does not accept the
            generator's output, or if it does not return one logit per
            example; at the first training step (before any update) if the
            real samples do not have the shape of the generated ones, or if
            batches hold labels.

    Example:

    ```python
    generator = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(2)])
    discriminator = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(1)])
    gan = keras_mixup.MixupGAN(generator, discriminator, latent_dim=2,
                               alpha=0.2, seed=0)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3),
                g_optimizer=keras.optimizers.Adam(1e-3))
    real = np.random.randn(256, 2).astype("float32")
    history = gan.fit(real, batch_size=64, epochs=1, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
    samples = generator.predict(np.random.randn(8, 2), verbose=0)
    assert samples.shape == (8, 2)
    ```
    """

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        alpha=0.2,
        seed=None,
        **kwargs,
    ):
        mixing = None
        if alpha is not None:
            named = {"alpha": alpha, "seed": seed}
            mixing = engine.MixingEngine.taking(
                "MixupGAN", GAN_OPTIONS, named, kwargs
            )
        else:  # the plain GAN never mixes: `prob` is checked, then unused
            checks.check_prob(kwargs.pop("prob", 1.0))
        super().__init__(**kwargs)
        self.latent_dim = checks.check_int(
            latent_dim,
            "latent_dim",
            minimum=1,
            meaning=" (the size of the noise vector the generator takes)",
        )
        #: The mixing engine, or `None` for the plain GAN (`alpha=None`).
        self.engine = mixing
        self.seed = checks.check_seed(seed)
        self.seed_source = (
            SeedSource(seed) if self.engine is None else self.engine.seed_source
        )
        self.generator = _check_model(generator, "generator")
        self.discriminator = _check_model(discriminator, "discriminator")
        self.sample_shape = self._check_models()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_optimizer = None
        self.g_optimizer = None
        self.built = True

    def _check_models(self):
        """Builds both models symbolically and checks they fit together.

        Returns:
            The shape of one generated sample (without the batch axis).
        """
        noise = keras.KerasTensor((None, self.latent_dim))
        try:
            fake = self.generator(noise)
        except Exception as error:
            raise ValueError(
                "`generator` must accept noise of shape (batch, latent_dim) "
                f"= (None, {self.latent_dim}); calling it on that raised "
                f"{type(error).__name__}: {error}"
            ) from error
        if not isinstance(fake, keras.KerasTensor) or len(fake.shape) < 2:
            raise ValueError(
                "`generator` must return one batch-first tensor of rank >= "
                f"2; received {fake!r}."
            )
        if not keras.backend.is_float_dtype(fake.dtype):
            raise ValueError(
                f"`generator` must return floats; received dtype {fake.dtype}."
            )
        try:
            logits = self.discriminator(fake)
        except Exception as error:
            raise ValueError(
                "`discriminator` must accept the generator's output, of shape "
                f"{fake.shape}; calling it on that raised "
                f"{type(error).__name__}: {error}"
            ) from error
        if not isinstance(logits, keras.KerasTensor) or tuple(
            logits.shape[1:]
        ) not in ((), (1,)):
            shape = getattr(logits, "shape", logits)
            raise ValueError(
                "`discriminator` must return one logit per example, of shape "
                f"(batch, 1) or (batch,); received {shape} for inputs of "
                f"shape {fake.shape}."
            )
        return tuple(fake.shape[1:])

    @property
    def alpha(self):
        """The alpha the next batch is drawn with, or `None` for the plain
        GAN (`get_config` keeps the constructor's)."""
        return None if self.engine is None else self.engine.alpha

    @property
    def mixing_state(self):
        """What `keras_mixup.MixupSchedule` changes: the switch and alpha
        (`None` for the plain GAN, which never mixes)."""
        return None if self.engine is None else self.engine.state

    def call(self, inputs, training=None):
        return self.generator(inputs, training=training)

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """Configures the model for training.

        Args:
            d_optimizer: the discriminator's optimizer: an instance, a name
                or a config dict.
            g_optimizer: the generator's optimizer, a different instance.
            **kwargs: passed to `keras.Model.compile` (`run_eagerly`,
                `jit_compile`, `steps_per_execution`). There is no `loss`
                or `metrics`: the losses are built in, and `d_loss` and
                `g_loss` are reported.

        Raises:
            ValueError: for a missing optimizer, the same instance given
                twice, or a `loss`, `optimizer` or `metrics` argument.
        """
        for key in ("optimizer", "loss", "metrics", "weighted_metrics"):
            if key in kwargs:
                raise ValueError(
                    f"MixupGAN.compile takes `d_optimizer` and `g_optimizer` "
                    f"and builds its own losses; received `{key}`."
                )
        d_optimizer = self._check_optimizer(d_optimizer, "d_optimizer")
        g_optimizer = self._check_optimizer(g_optimizer, "g_optimizer")
        if d_optimizer is g_optimizer:
            raise ValueError(
                "`d_optimizer` and `g_optimizer` must be two different "
                "optimizer instances (each keeps the state of its own "
                "model's variables); received the same instance twice."
            )
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)
        self._gan_compile_config = dict(kwargs)

    @staticmethod
    def _check_optimizer(optimizer, name):
        try:
            result = keras.optimizers.get(optimizer)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"`{name}` must be a Keras optimizer, its name or its config; "
                f"received {optimizer!r}."
            ) from error
        if result is None:
            raise ValueError(f"`{name}` is required; received None.")
        return result

    def get_compile_config(self):
        if not self.compiled or self.d_optimizer is None:
            return {}
        return {
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            **self._gan_compile_config,
        }

    def compile_from_config(self, config):
        config = dict(config)
        config["d_optimizer"] = keras.optimizers.deserialize(
            config["d_optimizer"]
        )
        config["g_optimizer"] = keras.optimizers.deserialize(
            config["g_optimizer"]
        )
        self.compile(**config)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def sample_noise(self, batch_size, seed):
        """Draws standard normal noise `[batch_size, latent_dim]`.

        Args:
            batch_size: an int or a scalar int tensor.
            seed: a stateless seed (see `keras_mixup.sample_lambda`).

        Returns:
            A float32 tensor of shape `[batch_size, latent_dim]`.
        """
        return tf.random.stateless_normal(
            [batch_size, self.latent_dim], as_seed(seed)
        )

    def draw_lambda(self, batch_size, seed):
        """Draws one lam per real example, lam ~ Beta(alpha, alpha), with
        the current alpha (the one a `MixupSchedule` set, if any).

        Only called when `alpha` is not `None`.

        Returns:
            A float32 tensor of shape `[batch_size]`.
        """
        return self.engine.draw_lambda([batch_size], seed)

    def discriminator_batch(self, real, fake, lam=None):
        """Builds the discriminator's inputs and their targets.

        With `lam`, real example `i` is blended with generated example `i`:
        `inputs = lam * real + (1 - lam) * fake`, `targets = lam`. Without
        (`lam=None`, or `alpha=None`: the plain GAN, also a step with mixing
        switched off), `inputs = concat([real, fake])` (each example blended
        with itself, exactly unchanged) and `targets` is lam = 1 for the
        real half and 0 for the generated half.

        Args:
            real: real samples `[B, ...]`, in the generator's output dtype.
            fake: generated samples, of the same shape and dtype.
            lam: float32 `[B]` in [0, 1], the weight of the real samples,
                or `None`. Defaults to `None`.

        Returns:
            `(inputs, targets)`, with `targets` float32 `[B]` (`[2B]` for
            the plain GAN).
        """
        if self.engine is None or lam is None:
            first = second = tf.concat([real, fake], axis=0)
            lam = tf.concat(
                [
                    tf.ones(tf.shape(real)[:1], "float32"),
                    tf.zeros(tf.shape(fake)[:1], "float32"),
                ],
                axis=0,
            )
        else:
            first, second = real, fake
        return blending.blend_pair(first, second, lam), lam

    def _real_samples(self, data):
        """Unpacks and checks a batch of real samples."""
        if isinstance(data, (tuple, list)):
            if len(data) != 1:
                raise ValueError(
                    "MixupGAN trains on real samples only: batches must be a "
                    "tensor or a 1-tuple `(x,)`; received a tuple of "
                    f"{len(data)} elements (labels or weights are not used)."
                )
            data = data[0]
        if isinstance(data, dict):
            raise ValueError(
                "MixupGAN trains on real samples given as one tensor; "
                "received a dict."
            )
        real = tf.convert_to_tensor(data)
        if not (real.dtype.is_floating or real.dtype.is_integer):
            raise ValueError(
                "The real samples must be numbers; received dtype "
                f"{real.dtype.name}."
            )
        if not real.shape[1:].is_compatible_with(self.sample_shape):
            expected = ", ".join(["batch", *map(str, self.sample_shape)])
            raise ValueError(
                "The real samples must have the shape of the generated ones, "
                f"({expected}); received batches of shape {real.shape}."
            )
        return tf.cast(real, self.generator.compute_dtype)

    def _discriminator_draws(self, real, seed, training):
        """Draws this step's generated samples, lam, and whether it mixes.

        Returns:
            `(fake, lam, mixed)`: `lam` and `mixed` (a scalar bool tensor)
            are `None` for the plain GAN.
        """
        batch_size = tf.shape(real)[0]
        # The first two seeds of a 3-way split are those of a 2-way one.
        noise_seed, lam_seed, mix_seed = backend.split(seed, count=3)
        fake = self.generator(
            self.sample_noise(batch_size, noise_seed), training=training
        )
        fake = tf.cast(fake, real.dtype)
        if self.engine is None:
            return fake, None, None
        lam = self.draw_lambda(batch_size, lam_seed)
        return fake, lam, self.mixing_state.decide(mix_seed)

    def _discriminator_loss(self, real, fake, lam, mixed, training):
        """The discriminator's loss: on the mixed batch if `mixed`, on the
        plain GAN batch otherwise (a `tf.cond`, so switching needs no
        retrace)."""

        def loss(lam):
            inputs, targets = self.discriminator_batch(real, fake, lam)
            logits = _logits(self.discriminator(inputs, training=training))
            return _bce(targets, logits)

        if mixed is None:
            return loss(None)
        return tf.cond(mixed, lambda: loss(lam), lambda: loss(None))

    def _generator_loss(self, batch_size, seed, training):
        """The non-saturating loss, -log sigmoid(D(G(z)))."""
        noise = self.sample_noise(batch_size, seed)
        fake = self.generator(noise, training=training)
        logits = _logits(self.discriminator(fake, training=training))
        return _bce(tf.ones_like(logits), logits)

    def _update(self, d_loss, g_loss):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        real = self._real_samples(data)
        d_seed, g_seed = backend.split(self.seed_source.next_seed())
        # Discriminator step, on real samples blended with generated ones.
        fake, lam, mixed = self._discriminator_draws(real, d_seed, True)
        with tf.GradientTape() as tape:
            d_loss = self._discriminator_loss(real, fake, lam, mixed, True)
        variables = self.discriminator.trainable_variables
        gradients = tape.gradient(d_loss, variables)
        self.d_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        # Generator step, on fresh noise.
        with tf.GradientTape() as tape:
            g_loss = self._generator_loss(tf.shape(real)[0], g_seed, True)
        variables = self.generator.trainable_variables
        gradients = tape.gradient(g_loss, variables)
        self.g_optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return self._update(d_loss, g_loss)

    def test_step(self, data):
        real = self._real_samples(data)
        d_seed, g_seed = backend.split(self.seed_source.next_seed())
        fake, lam, mixed = self._discriminator_draws(real, d_seed, False)
        d_loss = self._discriminator_loss(real, fake, lam, mixed, False)
        g_loss = self._generator_loss(tf.shape(real)[0], g_seed, False)
        return self._update(d_loss, g_loss)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(
                self.discriminator
            ),
            "latent_dim": self.latent_dim,
            "alpha": None,
            "seed": self.seed,
            **(self.engine.get_config() if self.engine else {}),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
