"""`MixupSchedule`: mixing off for the first or the last epochs, and alpha
by epoch."""

import keras

from keras_mixup import checks
from keras_mixup.state import MixingState

__all__ = ["MixupSchedule"]

#: What a `MixupSchedule` accepts, for error messages.
MIXING_OBJECTS = "Mixup, MixupLayer, MixupModel or MixupGAN"


def mixing_state_of(target, name="target"):
    """The `MixingState` of a mixing object.

    A mixing object is anything with a `mixing_state` attribute holding a
    `MixingState`: `Mixup`, `MixupLayer`, `MixupModel` and
    `MixupGAN` (with an alpha) are.

    Raises:
        ValueError: for anything else, and for a plain `MixupGAN`
            (`alpha=None`), which never mixes.
    """
    state = getattr(target, "mixing_state", None)
    if isinstance(state, MixingState):
        return state
    if state is None and hasattr(target, "mixing_state"):
        raise ValueError(
            f"`{name}` never mixes (a MixupGAN with alpha=None is the plain "
            f"GAN), so there is nothing to schedule; received {target!r}."
        )
    hint = ""
    if isinstance(target, keras.Model):
        hint = (
            " To schedule the MixupLayers of a model, pass them: "
            "`[layer for layer in model.layers if isinstance(layer, "
            "keras_mixup.MixupLayer)]`."
        )
    raise ValueError(
        f"`{name}` must be a mixing object ({MIXING_OBJECTS}) or a non-empty "
        f"list of them; received {target!r} of type "
        f"{type(target).__name__}.{hint}"
    )


def _check_targets(target):
    """The distinct mixing states of `target`, one object or a list."""
    if isinstance(target, (list, tuple)):
        if not target:
            raise ValueError(
                f"`target` must be a mixing object ({MIXING_OBJECTS}) or a "
                "non-empty list of them; received an empty list."
            )
        states = [
            mixing_state_of(item, f"target[{i}]")
            for i, item in enumerate(target)
        ]
    else:
        states = [mixing_state_of(target)]
    distinct = []
    for state in states:
        if not any(state is seen for seen in distinct):
            distinct.append(state)
    return distinct


_EPOCH = " (an epoch index, counted from 0 as in `fit`)"


def _check_alpha_schedule(alpha):
    """Validates `alpha`: `None`, a callable, or a dict {epoch: alpha}.

    Returns:
        `None`, the callable, or the dict as a list of `(epoch, alpha)`
        pairs sorted by epoch.
    """
    if alpha is None or callable(alpha):
        return alpha
    if not isinstance(alpha, dict) or not alpha:
        raise ValueError(
            "`alpha` must be None (keep each object's alpha), a callable "
            "`epoch -> alpha` or a non-empty dict `{epoch: alpha}` (each "
            "value holds from its epoch on); received "
            f"{alpha!r} of type {type(alpha).__name__}."
        )
    steps = []
    for epoch, value in alpha.items():
        if not checks.is_int(epoch) or epoch < 0:
            raise ValueError(
                "The keys of an `alpha` dict must be epochs, ints >= 0; "
                f"received key {epoch!r} in {alpha!r}."
            )
        steps.append((int(epoch), checks.check_alpha(value, f"alpha[{epoch}]")))
    return sorted(steps)


class MixupSchedule(keras.callbacks.Callback):
    """Switches mixing off and on, and changes alpha, by epoch.

    A Keras callback for `fit`. At the start of every epoch it sets, for
    each target, mixing off before `start_epoch` and from `stop_epoch` on,
    and alpha from the `alpha` schedule; the change applies from the next
    batch, without retracing. An unmixed batch passes as if mixed with
    lam = 1. The state is not saved: pass the callback again when resuming.
    See the guide "Schedules: `MixupSchedule` and `prob`".

    Args:
        target: a `Mixup`, `MixupLayer`, `MixupModel` or `MixupGAN` with
            an alpha, or a list of them.
        start_epoch: the first epoch that mixes (>= 0). Defaults to `0`.
        stop_epoch: the first epoch that no longer mixes (> `start_epoch`),
            or `None` to mix until the end. Defaults to `None`.
        alpha: `None` to leave alpha alone; a callable `epoch -> alpha`; or
            a dict `{epoch: alpha}`, piecewise constant (the constructor
            alpha before the first key). Defaults to `None`.

    Raises:
        ValueError: at construction for a target that does not mix, a bad
            `start_epoch` or `stop_epoch`, or an invalid `alpha`; at the
            start of an epoch if a callable `alpha` returns a bad value.

    Example:

    ```python
    mixup = keras_mixup.Mixup(alpha=0.2, num_classes=3, seed=1)
    x = np.random.rand(64, 4).astype("float32")
    y = np.random.randint(0, 3, size=64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).map(mixup)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy")
    # Unmixed in epochs 0 and 1, mixed from epoch 2, alpha 0.4 from epoch 3.
    schedule = keras_mixup.MixupSchedule(mixup, start_epoch=2, alpha={3: 0.4})
    model.fit(ds, epochs=4, callbacks=[schedule], verbose=0)
    assert float(mixup.mixing_state.alpha) == np.float32(0.4)
    ```
    """

    def __init__(self, target, start_epoch=0, stop_epoch=None, alpha=None):
        super().__init__()
        self.target = target
        #: The targets' distinct `MixingState`s.
        self.states = _check_targets(target)
        self.start_epoch = checks.check_int(
            start_epoch, "start_epoch", minimum=0, meaning=_EPOCH
        )
        if stop_epoch is not None:
            if not checks.is_int(stop_epoch) or stop_epoch <= self.start_epoch:
                raise ValueError(
                    "`stop_epoch` must be None or an int > start_epoch = "
                    f"{self.start_epoch} (the first epoch without mixing); "
                    f"received {stop_epoch!r}."
                )
            stop_epoch = int(stop_epoch)
        self.stop_epoch = stop_epoch
        self.alpha = alpha
        self._alpha_steps = _check_alpha_schedule(alpha)

    def __repr__(self):
        targets = (
            self.target
            if isinstance(self.target, (list, tuple))
            else [self.target]
        )
        names = [getattr(t, "name", type(t).__name__) for t in targets]
        return (
            f"MixupSchedule(target={names}, start_epoch={self.start_epoch}, "
            f"stop_epoch={self.stop_epoch!r}, alpha={self.alpha!r})"
        )

    def is_active(self, epoch):
        """Whether the targets mix during `epoch`.

        Args:
            epoch: an epoch index, counting from 0 as `fit` does.

        Returns:
            `True` from `start_epoch` until before `stop_epoch`.
        """
        return self.start_epoch <= epoch and (
            self.stop_epoch is None or epoch < self.stop_epoch
        )

    def alpha_at(self, epoch):
        """The scheduled alpha for `epoch`.

        Args:
            epoch: an epoch index, counting from 0 as `fit` does.

        Returns:
            The alpha, or `None` for "each target's constructor alpha"
            (before the first key of a dict) or, with `alpha=None`, "leave
            it alone".

        Raises:
            ValueError: if a callable `alpha` returns an invalid value.
        """
        if self._alpha_steps is None:
            return None
        if callable(self._alpha_steps):
            value = self._alpha_steps(epoch)
            name = f"alpha({epoch})"
            value = checks.check_alpha(value, name)
            return value
        value = None
        for key, step_value in self._alpha_steps:
            if key <= epoch:
                value = step_value
        return value

    def on_epoch_begin(self, epoch, logs=None):
        """Sets every target's switch and alpha for `epoch`."""
        active = self.is_active(epoch)
        alpha = self.alpha_at(epoch)
        for state in self.states:
            if alpha is not None:
                state.set(alpha=alpha)
            elif self._alpha_steps is not None:
                state.set(alpha=state.initial_alpha)
            state.set(active=active)
