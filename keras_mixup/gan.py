"""`MixupGAN`: a GAN whose discriminator is trained with mixup.

A training step is written once (`MixupGAN._step_losses`): the draws (noise,
lam, whether the step mixes), the discriminator batch and both losses run on
`keras.ops` and the model's seed stream on every backend. Only how a loss is
minimised differs by backend, in a small step object: a `tf.GradientTape`
on TensorFlow, `loss.backward()` on PyTorch, and on JAX Keras' stateless
step, `jax.value_and_grad` of the loss as a function of the variables'
values and `optimizer.stateless_apply`, with the seed generator and the
mixing state threaded through like every other non-trainable variable.
"""

import functools

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


def _call(function):
    return function()


def _positions(variables, part):
    """Where each variable of `part` sits in `variables`."""
    return [
        next(i for i, v in enumerate(variables) if v is variable)
        for variable in part
    ]


def _stateless(function, mapping, updated):
    """Runs `function()` with each variable of `mapping` (pairs of a
    variable and a value) read as that value.

    Returns:
        The result, and the values of the variables `updated` after it.
    """
    with keras.StatelessScope(state_mapping=mapping) as scope:
        result = function()
    return result, [scope.get_current_value(v) for v in updated]


class _Step:
    """Runs a training step's parts where variables hold their values
    (TensorFlow and PyTorch); subclasses minimise."""

    def run(self, function):
        """Runs `function()` (a draw) and returns its result."""
        return function()

    def loss(self, loss_of):
        """The loss `loss_of(run)` computes, `run` calling a function."""
        return loss_of(_call)


class _TensorFlowStep(_Step):
    """Minimises with gradients from a `tf.GradientTape`."""

    def minimize(self, loss_of, model, optimizer):
        """Computes a loss (see `loss`), takes one step of `optimizer` on
        the trainable variables of `model`, and returns the loss."""
        with tf.GradientTape() as tape:
            loss = self.loss(loss_of)
        variables = model.trainable_variables
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss


class _TorchStep(_Step):
    """Minimises with gradients from `loss.backward()`, as Keras' own
    PyTorch step takes them."""

    def __init__(self, owner):
        self.owner = owner

    def minimize(self, loss_of, model, optimizer):
        """See `_TensorFlowStep.minimize`."""
        import torch

        self.owner.zero_grad()  # the gradients left by the last backward
        loss = self.loss(loss_of)
        loss.backward()
        variables = model.trainable_weights
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in variables], variables)
        return loss


class _JaxStep:
    """Runs a training step's parts on JAX, statelessly: every function
    runs on the step's values of the owner's variables, and the values it
    leaves (seed generator, mixing state, batch statistics) are kept for
    the next part.

    Args:
        owner: the `MixupGAN`.
        trainable: the values of `owner.trainable_variables`.
        non_trainable: the values of `owner.non_trainable_variables`.
        optimizer_values: the values of `owner.optimizer.variables` (both
            optimizers'), or `None` outside training. Defaults to `None`.
    """

    def __init__(self, owner, trainable, non_trainable, optimizer_values=None):
        self.owner = owner
        self.trainable = list(trainable)
        self.non_trainable = list(non_trainable)
        self.optimizer_values = (
            None
            if optimizer_values is None
            else owner.optimizer.split(optimizer_values)
        )

    def _pure(self, trainable, function):
        """`(function(), non-trainable values after it)`, on `trainable`
        and the current non-trainable values; changes nothing here, so it
        may run inside a `cond` branch or a gradient."""
        owner = self.owner
        mapping = [
            *zip(owner.trainable_variables, trainable, strict=True),
            *zip(
                owner.non_trainable_variables, self.non_trainable, strict=True
            ),
        ]
        return _stateless(function, mapping, owner.non_trainable_variables)

    def run(self, function):
        """Runs `function()` (a draw) statelessly and returns its result."""
        result, self.non_trainable = self._pure(self.trainable, function)
        return result

    def loss(self, loss_of):
        """The loss `loss_of(run)` computes, where `run(function)` returns
        `(function(), non-trainable values)`."""
        run = functools.partial(self._pure, self.trainable)
        loss, self.non_trainable = loss_of(run)
        return loss

    def minimize(self, loss_of, model, optimizer):
        """Computes a loss (see `loss`) and its gradient with respect to the
        values of `model`'s trainable variables, applies one step of
        `optimizer` to them, and returns the loss."""
        import jax

        positions = _positions(
            self.owner.trainable_variables, model.trainable_variables
        )

        def loss_and_state(values):
            trainable = list(self.trainable)
            for position, value in zip(positions, values, strict=True):
                trainable[position] = value
            return loss_of(functools.partial(self._pure, trainable))

        values = [self.trainable[position] for position in positions]
        (loss, self.non_trainable), gradients = jax.value_and_grad(
            loss_and_state, has_aux=True
        )(values)
        index = self.owner.optimizer.index(optimizer)
        values, self.optimizer_values[index] = optimizer.stateless_apply(
            self.optimizer_values[index], gradients, values
        )
        for position, value in zip(positions, values, strict=True):
            self.trainable[position] = value
        return loss


class _Optimizers:
    """What Keras' JAX trainer reads as `model.optimizer`: the variables of
    both optimizers (the discriminator's first), which it threads through
    the stateless step."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    @property
    def built(self):
        return all(optimizer.built for optimizer in self.optimizers)

    @property
    def variables(self):
        return [v for o in self.optimizers for v in o.variables]

    def index(self, optimizer):
        """The position of `optimizer` among the optimizers."""
        return [o is optimizer for o in self.optimizers].index(True)

    def split(self, values):
        """The values of `variables`, one list per optimizer."""
        parts, start = [], 0
        for optimizer in self.optimizers:
            stop = start + len(optimizer.variables)
            parts.append(list(values[start:stop]))
            start = stop
        return parts


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

    It trains on every Keras backend (TensorFlow, JAX, PyTorch), with the
    same draws from the same seed on a given backend; on JAX and PyTorch it
    never imports TensorFlow, and `.keras` files load across backends.

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
        self._hold_seeds()
        self.generator = _check_model(generator, "generator")
        self.discriminator = _check_model(discriminator, "discriminator")
        self.sample_shape = self._check_models()
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_optimizer = None
        self.g_optimizer = None
        self.built = True

    def _hold_seeds(self):
        """Makes the seed stream of the steps: a `SeedSource` on TensorFlow
        (`seed_source`), else a `keras.random.SeedGenerator`, tracked (with
        the mixing state on JAX) so that Keras threads it through a JAX
        step."""
        if keras.backend.backend() == "tensorflow":
            self.seed_source = (
                SeedSource(self.seed)
                if self.engine is None
                else self.engine.seed_source
            )
        elif self.engine is None:
            self._mixing_seed_generator = keras.random.SeedGenerator(
                self.seed, name="mixup_seed_generator"
            )
        else:
            self._track_mixing_state()

    _track_mixing_state = engine.HoldsEngine._track_mixing_state

    def _next_seed(self):
        """The seed of a step's draws: a fresh stateless seed on
        TensorFlow, else the seed generator (each draw advances it)."""
        if keras.backend.backend() == "tensorflow":
            return self.seed_source.next_seed()
        return self._mixing_seed_generator

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

    def __repr__(self):
        options = (
            "alpha=None" if self.engine is None else self.engine.describe()
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
        if keras.backend.backend() == "jax":
            self.optimizer = _Optimizers(self.d_optimizer, self.g_optimizer)
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
        if self.engine is None or lam is None:
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
        real = checks.to_tensor(data)
        if not (backend.is_floating(real) or backend.is_integer(real)):
            raise ValueError(
                "The real samples must be numbers; received dtype "
                f"{backend.dtype_name(real)}."
            )
        if not backend.compatible_shapes(real.shape[1:], self.sample_shape):
            expected = ", ".join(["batch", *map(str, self.sample_shape)])
            raise ValueError(
                "The real samples must have the shape of the generated ones, "
                f"({expected}); received batches of shape "
                f"{tuple(real.shape)}."
            )
        return keras.ops.cast(real, self.generator.compute_dtype)

    def _draws(self, real, training):
        """Draws a training step's random parts.

        Returns:
            `((fake, lam, mixed), noise)`: the discriminator step's
            generated samples (constants: no gradient reaches the
            generator), its lam and whether it mixes (a scalar bool
            tensor; both `None` for the plain GAN), and the generator
            step's noise.
        """
        d_seed, g_seed = backend.split(self._next_seed())
        # The first two seeds of a 3-way split are those of a 2-way one.
        noise_seed, lam_seed, mix_seed = backend.split(d_seed, count=3)
        batch_size = keras.ops.shape(real)[0]
        fake = self.generator(
            self.sample_noise(batch_size, noise_seed), training=training
        )
        fake = keras.ops.stop_gradient(keras.ops.cast(fake, real.dtype))
        noise = self.sample_noise(batch_size, g_seed)
        if self.engine is None:
            return (fake, None, None), noise
        lam = self.draw_lambda(batch_size, lam_seed)
        return (fake, lam, self.mixing_state.decide(mix_seed)), noise

    def _discriminator_loss(self, real, draws, training, run=_call):
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
                inputs, targets = self.discriminator_batch(real, fake, lam)
                logits = self.discriminator(inputs, training=training)
                return _bce(targets, _logits(logits))

            return run(batch_loss)

        if mixed is None:
            return loss(None)
        return keras.ops.cond(mixed, lambda: loss(lam), lambda: loss(None))

    def _generator_loss(self, noise, training):
        """The non-saturating loss, -log sigmoid(D(G(z)))."""
        fake = self.generator(noise, training=training)
        logits = _logits(self.discriminator(fake, training=training))
        return _bce(keras.ops.ones_like(logits), logits)

    def _step_losses(self, real, step, training=True):
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
        draws, noise = step.run(lambda: self._draws(real, training))
        d_loss_of = functools.partial(
            self._discriminator_loss, real, draws, training
        )

        def g_loss_of(run):
            return run(lambda: self._generator_loss(noise, training))

        if not training:
            return step.loss(d_loss_of), step.loss(g_loss_of)
        d_loss = step.minimize(d_loss_of, self.discriminator, self.d_optimizer)
        g_loss = step.minimize(g_loss_of, self.generator, self.g_optimizer)
        return d_loss, g_loss

    def _update(self, d_loss, g_loss):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def _backend_step(self):
        """How this backend minimises (not JAX: see `_jax_step`)."""
        if keras.backend.backend() == "torch":
            return _TorchStep(self)
        return _TensorFlowStep()

    def train_step(self, *args):
        """One training step (see `_step_losses`). On JAX, Keras' stateless
        step `train_step(state, data)`, which returns the updated state."""
        if keras.backend.backend() == "jax":
            return self._jax_step(*args, training=True)
        (data,) = args
        real = self._real_samples(data)
        return self._update(*self._step_losses(real, self._backend_step()))

    def test_step(self, *args):
        """Both losses on a batch, without updates (see `train_step`)."""
        if keras.backend.backend() == "jax":
            return self._jax_step(*args, training=False)
        (data,) = args
        real = self._real_samples(data)
        losses = self._step_losses(real, self._backend_step(), training=False)
        return self._update(*losses)

    def _jax_step(self, state, data, *, training):
        """The JAX train or test step on the state's variable values."""
        # A train state holds the optimizers' values, a test state does not.
        trainable, non_trainable, *optimizer_values, metrics_values = state
        step = _JaxStep(self, trainable, non_trainable, *optimizer_values)
        losses = self._step_losses(self._real_samples(data), step, training)
        logs, metrics_values = _stateless(
            lambda: self._update(*losses),
            list(zip(self.metrics_variables, metrics_values, strict=True)),
            self.metrics_variables,
        )
        if training:
            optimizer_values = [
                v for part in step.optimizer_values for v in part
            ]
            return logs, (
                step.trainable,
                step.non_trainable,
                optimizer_values,
                metrics_values,
            )
        return logs, (step.trainable, step.non_trainable, metrics_values)

    # The seed streams are saved (the switch and alpha are not), each under
    # its backend's key: the same file loads on every backend.
    save_own_variables = engine.HoldsEngine.save_own_variables
    load_own_variables = engine.HoldsEngine.load_own_variables

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
            **(self.engine.get_config() if self.engine else {}),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
