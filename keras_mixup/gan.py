"""`MixupGAN`: a GAN whose discriminator is trained with mixup.

A training step is written once (`_step_losses`): the draws (noise,
lam, whether the step mixes), the discriminator batch and both losses run on
`keras.ops` and the engine's seed stream on every backend. Only how a loss
is minimised differs by backend: see `keras_mixup.gan_steps`. Like every
entry point, the GAN holds a mixing engine; the plain GAN (`alpha=None`)
holds one that never mixes.
"""

import functools

import keras

from keras_mixup import backend, blending, checks, gan_steps
from keras_mixup.holding import HoldsEngine
from keras_mixup.state import as_seed

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
    logits = keras.ops.convert_to_tensor(logits)
    if backend.rank(logits) == 2:
        logits = keras.ops.squeeze(logits, axis=-1)
    return keras.ops.cast(logits, "float32")


def _bce(targets, logits):
    """Mean binary cross-entropy of logits against (soft) targets."""
    targets = keras.ops.cast(targets, logits.dtype)
    return keras.ops.mean(
        keras.ops.binary_crossentropy(targets, logits, from_logits=True)
    )


@keras.saving.register_keras_serializable(package="keras_mixup")
@backend.not_converted_methods(
    "draw_lambda", "discriminator_batch", "train_step", "test_step"
)
class MixupGAN(HoldsEngine, keras.Model):
    """A GAN whose discriminator is trained with mixup (Zhang et al. 2018).

    Each step the discriminator sees `lam * x_real + (1 - lam) * G(z)`,
    lam ~ Beta(alpha, alpha) per example, with target lam; `alpha=None` is
    the plain GAN. Calling the model on noise runs the generator. See the
    guide "GANs: `MixupGAN`".

    Args:
        generator: a Keras model mapping noise `[B, latent_dim]` to samples.
        discriminator: a Keras model mapping samples to logits `[B, 1]`.
        latent_dim: the size of the standard normal noise, an int >= 1.
        alpha: the Beta concentration (> 0), or `None` for the plain GAN.
            Defaults to `0.2`.
        seed: an int for reproducible draws, or `None`. Defaults to `None`.
        prob: the chance a discriminator step mixes. Defaults to `1.0`.
        **kwargs: passed to `keras.Model` (such as `name`).

    Call arguments:
        inputs: noise of shape `[B, latent_dim]`.
        training: passed to the generator. Defaults to `None`.

    Returns:
        The generated samples.

    Raises:
        ValueError: for an invalid `alpha` or `latent_dim`, models whose
            shapes do not fit, or real samples of another shape or with
            labels at the first training step.

    Example:

    ```python
    g = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    d = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    gan = keras_mixup.MixupGAN(g, d, latent_dim=2, alpha=0.2, seed=0)
    gan.compile(d_optimizer="adam", g_optimizer="adam")
    history = gan.fit(np.random.randn(256, 2), batch_size=64, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss"}
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
        named = {"alpha": 0.2 if alpha is None else alpha, "seed": seed}
        # The plain GAN (`alpha=None`) holds an engine that never mixes.
        self.hold_engine(
            "MixupGAN", GAN_OPTIONS, named, kwargs, mixes=alpha is not None
        )
        self.latent_dim = checks.check_int(
            latent_dim,
            "latent_dim",
            minimum=1,
            meaning=" (the size of the noise vector the generator takes)",
        )
        self.generator = _check_model(generator, "generator")
        self.discriminator = _check_model(discriminator, "discriminator")
        self.sample_shape = _check_models(self)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_optimizer = None
        self.g_optimizer = None
        self.built = True

    def _next_seed(self):
        """The seed of a step's draws: the engine's stream."""
        return self.engine.next_seed()

    def __repr__(self):
        options = (
            self.engine.settings.describe()
            if self.engine.mixes
            else f"alpha=None, seed={self.seed!r}"
        )
        return (
            f"MixupGAN(name={self.name!r}, generator={self.generator.name!r}, "
            f"discriminator={self.discriminator.name!r}, "
            f"latent_dim={self.latent_dim}, {options})"
        )

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
        d_optimizer = _check_optimizer(d_optimizer, "d_optimizer")
        g_optimizer = _check_optimizer(g_optimizer, "g_optimizer")
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
        if backend.keras_backend() == "jax":
            self.optimizer = gan_steps.Optimizers(
                self.d_optimizer, self.g_optimizer
            )
        self._gan_compile_config = dict(kwargs)

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
            seed: a stateless seed (see `keras_mixup.sample_lambda`), or on
                JAX and PyTorch a `keras.random.SeedGenerator` (advanced by
                the draw).

        Returns:
            A float32 tensor of shape `[batch_size, latent_dim]`.
        """
        if not isinstance(seed, keras.random.SeedGenerator):
            seed = as_seed(seed)
        return backend.normal([batch_size, self.latent_dim], seed)

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
        if not self.engine.mixes or lam is None:
            first = second = keras.ops.concatenate([real, fake], axis=0)
            size = keras.ops.shape(real)[:1]
            lam = keras.ops.concatenate(
                [
                    keras.ops.ones(size, "float32"),
                    keras.ops.zeros(size, "float32"),
                ],
                axis=0,
            )
        else:
            first, second = real, fake
        return blending.blend_pair(first, second, lam), lam

    def _backend_step(self):
        """How this backend minimises (not JAX: see `_jax_step`)."""
        return gan_steps.for_backend(self)

    def train_step(self, *args):
        """One training step (see `_step_losses`). On JAX, Keras' stateless
        step `train_step(state, data)`, which returns the updated state."""
        if backend.keras_backend() == "jax":
            return _jax_step(self, *args, training=True)
        (data,) = args
        real = _real_samples(self, data)
        return _update(self, *_step_losses(self, real, self._backend_step()))

    def test_step(self, *args):
        """Both losses on a batch, without updates (see `train_step`)."""
        if backend.keras_backend() == "jax":
            return _jax_step(self, *args, training=False)
        (data,) = args
        real = _real_samples(self, data)
        losses = _step_losses(self, real, self._backend_step(), training=False)
        return _update(self, *losses)

    def _seed_streams(self):
        """The steps' seed streams (see `_hold_seeds`), for
        `save_own_variables`."""
        return {
            "seed_source": getattr(self, "seed_source", None),
            "seed_generator": getattr(self, "_mixing_seed_generator", None),
        }

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
            **(self.engine.settings.get_config() if self.engine.mixes else {}),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


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


def _check_models(gan):
    """Builds both models symbolically and checks they fit together.

    Returns:
        The shape of one generated sample (without the batch axis).
    """
    noise = keras.KerasTensor((None, gan.latent_dim))
    try:
        fake = gan.generator(noise)
    except Exception as error:
        raise ValueError(
            "`generator` must accept noise of shape (batch, latent_dim) "
            f"= (None, {gan.latent_dim}); calling it on that raised "
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
        logits = gan.discriminator(fake)
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


def _real_samples(gan, data):
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
    real = checks.to_tensor(data)
    if not (backend.is_floating(real) or backend.is_integer(real)):
        raise ValueError(
            "The real samples must be numbers; received dtype "
            f"{backend.dtype_name(real)}."
        )
    if not backend.compatible_shapes(real.shape[1:], gan.sample_shape):
        expected = ", ".join(["batch", *map(str, gan.sample_shape)])
        raise ValueError(
            "The real samples must have the shape of the generated ones, "
            f"({expected}); received batches of shape "
            f"{tuple(real.shape)}."
        )
    return keras.ops.cast(real, gan.generator.compute_dtype)


def _draws(gan, real, training):
    """Draws a training step's random parts.

    Returns:
        `((fake, lam, mixed), noise)`: the discriminator step's
        generated samples (constants: no gradient reaches the
        generator), its lam and whether it mixes (a scalar bool
        tensor; both `None` for the plain GAN), and the generator
        step's noise.
    """
    d_seed, g_seed = backend.split(gan._next_seed())
    # The first two seeds of a 3-way split are those of a 2-way one.
    noise_seed, lam_seed, mix_seed = backend.split(d_seed, count=3)
    batch_size = keras.ops.shape(real)[0]
    fake = gan.generator(
        gan.sample_noise(batch_size, noise_seed), training=training
    )
    fake = keras.ops.stop_gradient(keras.ops.cast(fake, real.dtype))
    noise = gan.sample_noise(batch_size, g_seed)
    if not gan.engine.mixes:
        return (fake, None, None), noise
    lam = gan.draw_lambda(batch_size, lam_seed)
    return (fake, lam, gan.mixing_state.decide(mix_seed)), noise


def _discriminator_loss(gan, real, draws, training, run=gan_steps.call):
    """The discriminator's loss: on the mixed batch if the step mixes,
    on the plain GAN batch otherwise (a `cond`, so switching needs no
    retrace).

    Args:
        real: the real samples.
        draws: `(fake, lam, mixed)` (see `_draws`).
        training: passed to the discriminator.
        run: calls a loss function of no arguments; on JAX it runs it
            statelessly and returns `(loss, state)` (what each `cond`
            branch then returns). Defaults to calling it.
    """
    fake, lam, mixed = draws

    def loss(lam):
        def batch_loss():
            inputs, targets = gan.discriminator_batch(real, fake, lam)
            logits = gan.discriminator(inputs, training=training)
            return _bce(targets, _logits(logits))

        return run(batch_loss)

    if mixed is None:
        return loss(None)
    return keras.ops.cond(mixed, lambda: loss(lam), lambda: loss(None))


def _generator_loss(gan, noise, training):
    """The non-saturating loss, -log sigmoid(D(G(z)))."""
    fake = gan.generator(noise, training=training)
    logits = _logits(gan.discriminator(fake, training=training))
    return _bce(keras.ops.ones_like(logits), logits)


def _step_losses(gan, real, step, training=True):
    """One step on real samples, the same on every backend: draws the
    noise and lam, then the discriminator's update on real samples
    blended with generated ones, then the generator's on fresh noise.

    Args:
        real: the real samples (see `_real_samples`).
        step: how the backend runs draws and minimises losses.
        training: `False` computes both losses without updates (the
            test step). Defaults to `True`.

    Returns:
        `(d_loss, g_loss)`.
    """
    draws, noise = step.run(lambda: _draws(gan, real, training))
    d_loss_of = functools.partial(
        _discriminator_loss, gan, real, draws, training
    )

    def g_loss_of(run):
        return run(lambda: _generator_loss(gan, noise, training))

    if not training:
        return step.loss(d_loss_of), step.loss(g_loss_of)
    d_loss = step.minimize(d_loss_of, gan.discriminator, gan.d_optimizer)
    g_loss = step.minimize(g_loss_of, gan.generator, gan.g_optimizer)
    return d_loss, g_loss


def _update(gan, d_loss, g_loss):
    gan.d_loss_tracker.update_state(d_loss)
    gan.g_loss_tracker.update_state(g_loss)
    return {m.name: m.result() for m in gan.metrics}


def _jax_step(gan, state, data, *, training):
    """The JAX train or test step on the state's variable values."""
    # A train state holds the optimizers' values, a test state does not.
    trainable, non_trainable, *optimizer_values, metrics_values = state
    step = gan_steps.JaxStep(gan, trainable, non_trainable, *optimizer_values)
    losses = _step_losses(gan, _real_samples(gan, data), step, training)
    logs, metrics_values = gan_steps.stateless(
        lambda: _update(gan, *losses),
        list(zip(gan.metrics_variables, metrics_values, strict=True)),
        gan.metrics_variables,
    )
    if training:
        optimizer_values = [v for part in step.optimizer_values for v in part]
        return logs, (
            step.trainable,
            step.non_trainable,
            optimizer_values,
            metrics_values,
        )
    return logs, (step.trainable, step.non_trainable, metrics_values)
