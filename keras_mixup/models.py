"""`MixupModel`: a model wrapper whose training step mixes, at the input or
at hidden layers (Manifold Mixup)."""

import copy

import keras
import tensorflow as tf

from keras_mixup import mixing
from keras_mixup.data import Mixup, deserialize_knn_features
from keras_mixup.layers import (
    MixingPlan,
    MixupLayer,
    current_plan,
    mixing_plan,
)

INPUT = "input"
LATENT = "latent"


def find_mixup_layers(model):
    """Every `MixupLayer` inside `model`, nested models and layers included,
    in depth-first order of the model's layers."""
    found, seen = [], set()

    def walk(layer):
        for sublayer in layer._flatten_layers(
            include_self=False, recursive=False
        ):
            if id(sublayer) in seen:
                continue
            seen.add(id(sublayer))
            if isinstance(sublayer, MixupLayer):
                found.append(sublayer)
            walk(sublayer)

    walk(model)
    return found


def resolve_mix_points(model, mix_at):
    """Validates `mix_at` and returns the mix points it names, in order:
    `"input"` and/or `MixupLayer` objects.

    Raises:
        ValueError: for an unknown value, a name no layer has, a layer that
            is not a MixupLayer, an ambiguous or repeated name, or
            `"latent"` on a model without MixupLayers.
    """
    mixup_layers = find_mixup_layers(model)
    names = [layer.name for layer in mixup_layers]
    if isinstance(mix_at, str):
        if mix_at == INPUT:
            return [INPUT]
        if mix_at == LATENT:
            if not mixup_layers:
                raise ValueError(
                    "`mix_at='latent'` mixes at the input or at a "
                    "MixupLayer inside the model, but the model has no "
                    "MixupLayer: add keras_mixup.MixupLayer() after the "
                    "hidden layers to mix at, or use `mix_at='input'`."
                )
            return [INPUT, *mixup_layers]
        raise ValueError(
            f"`mix_at` must be 'input', 'latent' or a list of MixupLayer "
            f"names (optionally with 'input'); received {mix_at!r}. "
            f"MixupLayers in the model: {names}."
        )
    if (
        not isinstance(mix_at, (list, tuple))
        or not mix_at
        or not all(isinstance(name, str) for name in mix_at)
    ):
        raise ValueError(
            f"`mix_at` must be 'input', 'latent' or a non-empty list of "
            f"MixupLayer names (optionally with 'input'); received "
            f"{mix_at!r}. MixupLayers in the model: {names}."
        )
    if len(set(mix_at)) != len(mix_at):
        raise ValueError(f"`mix_at` names a point twice: {list(mix_at)}.")
    points = []
    for name in mix_at:
        if name == INPUT:
            points.append(INPUT)
            continue
        matches = [
            layer
            for layer in model._flatten_layers(include_self=False)
            if layer.name == name
        ]
        if not matches:
            raise ValueError(
                f"`mix_at` names {name!r}, but the model has no layer of "
                f"that name. MixupLayers in the model: {names}."
            )
        if len(matches) > 1:
            raise ValueError(
                f"`mix_at` names {name!r}, which {len(matches)} layers of "
                "the model share; give the MixupLayers unique names."
            )
        if not isinstance(matches[0], MixupLayer):
            raise ValueError(
                f"`mix_at` names {name!r}, a {type(matches[0]).__name__} "
                "layer; only MixupLayers (and 'input') are mix points. "
                f"MixupLayers in the model: {names}."
            )
        points.append(matches[0])
    # Keep the model's order, whatever the order of the list.
    order = {id(layer): i for i, layer in enumerate(mixup_layers)}
    return sorted(points, key=lambda p: -1 if p == INPUT else order[id(p)])


class _MixPoints:
    """Holds the mix points out of Keras' layer tracking (the layers are
    already tracked through the wrapped model)."""

    def __init__(self, points):
        self.points = points


@keras.saving.register_keras_serializable(package="keras_mixup")
class MixupModel(keras.Model):
    """Wraps a model so that its training step mixes (mixup or Manifold
    Mixup).

    `compile`, `fit`, `evaluate`, `predict`, callbacks, metrics and `save`
    work as for the wrapped model; only the training step mixes.

    - `mix_at="input"` (mixup, Zhang et al. 2018): each step mixes the
      inputs, the labels and the sample weights with lam ~ Beta(alpha,
      alpha), one lam per example, and a random partner from the batch.
      Labels are mixed, so any loss is right, mean squared error included.
    - `mix_at="latent"` (Manifold Mixup, Verma et al., ICML 2019): each
      step picks one mix point uniformly among the input and every
      `keras_mixup.MixupLayer` inside the wrapped model (nested models
      included), mixes the representation there with the step's lam and
      partners, and mixes the labels and sample weights with the same lam
      and partners; the other MixupLayers pass through for that step.
    - `mix_at=[names]`: as `"latent"`, among the named MixupLayers (and
      the input if `"input"` is listed).

    With any `mix_at`, MixupLayers the step does not pick pass through:
    the batch is mixed once per step. Integer labels are one-hot encoded
    with `num_classes` in every step, evaluation included, so compile
    with a categorical loss (such as `"categorical_crossentropy"`); float
    labels (one-hot, soft, regression targets) are mixed as they are.
    `evaluate` and `predict` never mix. lam is drawn in float32 and only
    the blend is cast, so mixed precision policies and
    `jit_compile=True` work, and one trace serves every step.

    Args:
        model: the `keras.Model` to train (Sequential, functional or
            subclassed; any inputs structure).
        alpha: the Beta concentration, a finite number > 0. Defaults to
            `0.2`.
        num_classes: the number of classes, to one-hot encode integer
            labels. Defaults to `None`.
        mix_at: `"input"`, `"latent"`, or a list of MixupLayer names
            (optionally with `"input"`). Defaults to `"input"`.
        seed: an int for a reproducible stream of lam, partners and mix
            points, or `None`. Defaults to `None`.
        pairing: who is mixed with whom: `"random"`, `"same_class"`,
            `"knn"` or `"same_class_knn"`, as for `keras_mixup.Mixup` (in
            latent modes, distances are taken on the inputs). Defaults to
            `"random"`.
        knn_k: the number of nearest neighbours for the knn pairings.
            Defaults to `5`.
        knn_features: a callable mapping the inputs to feature vectors for
            the knn pairings, or `None`. Defaults to `None`.
        prob: the probability that a training step mixes at all, in
            [0, 1]; a step that does not trains on the batch as given
            (integer labels one-hot encoded). Defaults to `1.0`.
        **kwargs: base model arguments (`name`, ...).

    Call arguments:
        inputs: the wrapped model's inputs.
        training: passed to the wrapped model. Defaults to `None`.

    Returns:
        The wrapped model's outputs. Calling the model never mixes, even
        with `training=True`: only the training step does.

    Raises:
        ValueError: at construction if `model` is not a Keras model, for an
            invalid `alpha`, `num_classes`, `seed` or `prob`, and for a
            `mix_at` that is unknown, names a missing layer or a layer that
            is not a MixupLayer, or is `"latent"` for a model without
            MixupLayers; at the first training step for integer labels
            without `num_classes`, or a chosen MixupLayer the forward pass
            never calls.

    Example:

    ```python
    backbone = keras.Sequential([
        keras.Input((8,)),
        keras.layers.Dense(16, activation="relu"),
        keras_mixup.MixupLayer(name="mix_hidden"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model = keras_mixup.MixupModel(
        backbone, alpha=2.0, num_classes=3, mix_at="latent", seed=1
    )
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    x = np.random.rand(64, 8).astype("float32")
    y = np.random.randint(0, 3, size=64)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert model.mix_points == ["input", "mix_hidden"]
    assert model.predict(x, verbose=0).shape == (64, 3)
    ```
    """

    def __init__(
        self,
        model,
        alpha=0.2,
        num_classes=None,
        mix_at="input",
        seed=None,
        *,
        pairing="random",
        knn_k=5,
        knn_features=None,
        prob=1.0,
        **kwargs,
    ):
        if not isinstance(model, keras.Model):
            raise ValueError(
                "`model` must be a keras.Model (Sequential, functional or "
                f"subclassed); received {model!r} of type "
                f"{type(model).__name__}."
            )
        points = resolve_mix_points(model, mix_at)
        super().__init__(**kwargs)
        self.mixup = Mixup(
            alpha,
            num_classes=num_classes,
            pairing=pairing,
            knn_k=knn_k,
            knn_features=knn_features,
            prob=prob,
            seed=seed,
        )
        self.model = model
        self.alpha = self.mixup.alpha
        self.num_classes = self.mixup.num_classes
        self.prob = self.mixup.prob
        self.mix_at = mix_at if isinstance(mix_at, str) else list(mix_at)
        self.seed = seed
        self._mix_points = _MixPoints(points)

    @property
    def mixing_state(self):
        """The switch and alpha a `keras_mixup.MixupSchedule` changes."""
        return self.mixup.mixing_state

    @property
    def mix_points(self):
        """The names of the points a step may mix at, in model order."""
        return [p if p == INPUT else p.name for p in self._mix_points.points]

    def call(self, inputs, training=None):
        """Calls the wrapped model; never mixes, even with `training=True`
        (its MixupLayers pass through unless a training step picks them)."""
        if current_plan() is not None:  # in `train_step`
            return self.model(inputs, training=training)
        with mixing_plan(MixingPlan()):
            return self.model(inputs, training=training)

    def mix(self, x, y=None, sample_weight=None):
        """Draws and applies one training step's mixing.

        In `"input"` mode the batch is mixed here. In latent modes the
        labels and weights are mixed here, the inputs only if the step
        picked the input, and the returned plan tells the MixupLayers what
        to do while the forward pass is traced in `mixing_plan(plan)`.

        Args:
            x: the batch's inputs (any structure the wrapped model takes).
            y: the labels, or `None`. Defaults to `None`.
            sample_weight: per-example weights, or `None`. Defaults to
                `None`.

        Returns:
            `(x, y, sample_weight, plan)`: labels come back as floats
            (integer ids one-hot encoded), `None` entries stay `None`, and
            `plan` is a `keras_mixup.layers.MixingPlan`.
        """
        if self.mix_at == INPUT:
            x, y, sample_weight = self.mixup.mix(x, y, sample_weight)
            return x, y, sample_weight, MixingPlan()
        x, y, sample_weight, size = mixing.check_batch(x, y, sample_weight)
        lam, partner_index = self.mixup.draw(size, x, y)
        points = self._mix_points.points
        point = tf.random.stateless_uniform(
            [],
            self.mixup.seed_source.next_seed(),
            minval=0,
            maxval=len(points),
            dtype=tf.int32,
        )
        plan = MixingPlan(
            lam,
            partner_index,
            point,
            {id(p): i for i, p in enumerate(points) if p != INPUT},
        )
        if INPUT in points:
            x = plan.blend_at(points.index(INPUT), x)
        # Labels and weights only: an empty structure stands for the inputs.
        _, y, sample_weight = mixing.mix_batch(
            (),
            y,
            sample_weight,
            lam,
            partner_index,
            num_classes=self.num_classes,
        )
        return x, y, sample_weight, plan

    def train_step(self, data):
        """Mixes the batch (see `mix`), then runs the usual training step."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y, sample_weight, plan = self.mix(x, y, sample_weight)
        with mixing_plan(plan):
            logs = super().train_step((x, y, sample_weight))
        missed = [
            p.name
            for p in self._mix_points.points
            if p != INPUT and id(p) not in plan.reached
        ]
        if missed:
            raise ValueError(
                f"`mix_at` includes the MixupLayers {missed}, but the "
                "forward pass never called them, so the labels would be "
                "mixed without the inputs. Call them in the model, or leave "
                "them out of `mix_at`."
            )
        return logs

    def _encode(self, y):
        """One-hot encodes integer labels, as the training step does."""
        if y is None or self.num_classes is None:
            return y
        return tf.nest.map_structure(
            lambda t: (
                mixing.encode_labels(t, self.num_classes)
                if not tf.as_dtype(t.dtype).is_floating
                else t
            ),
            y,
        )

    def compute_loss(
        self,
        x=None,
        y=None,
        y_pred=None,
        sample_weight=None,
        training=True,
    ):
        """The compiled loss, with integer labels one-hot encoded."""
        return super().compute_loss(
            x, self._encode(y), y_pred, sample_weight, training=training
        )

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The compiled metrics, with integer labels one-hot encoded."""
        return super().compute_metrics(
            x, self._encode(y), y_pred, sample_weight=sample_weight
        )

    def get_config(self):
        """Returns the constructor arguments, the wrapped model serialized."""
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "alpha": self.alpha,
                "num_classes": self.num_classes,
                "mix_at": self.mix_at,
                "seed": self.seed,
            }
        )
        mixup_config = self.mixup.get_config()
        config.update(
            {
                key: mixup_config[key]
                for key in ("pairing", "knn_k", "knn_features", "prob")
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Keras' deserialization consumes the nested dicts: work on a copy.
        config = copy.deepcopy(config)
        config["model"] = keras.saving.deserialize_keras_object(
            config["model"], custom_objects=custom_objects
        )
        config["knn_features"] = deserialize_knn_features(
            config.get("knn_features")
        )
        return cls(**config)
