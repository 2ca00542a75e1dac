"""RegMixup under one Keras backend, in a subprocess of
regmixup_backends_test.py:

    KERAS_BACKEND=torch python tests/regmixup_backend_scenarios.py

prints one JSON object: the weights before one step, the logged losses of
that step (input and latent mixing, a draw injected) and what evaluate
reports.
"""

import json

import keras
import numpy as np

import keras_mixup

X = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [-1.0, 1.0, 1.0], [2.0, 2.0, -0.5]]
Y = [0, 1, 1, 0]
LAM = [0.7, 0.2, 0.5, 0.9]
PARTNER = [1, 0, 3, 2]


def run(mix_at, weight):
    layers = [keras.Input((3,))]
    if mix_at == "latent":
        layers.append(keras_mixup.MixupLayer(name="mix"))
    layers.append(
        keras.layers.Dense(
            2, kernel_initializer=keras.initializers.RandomNormal(seed=1)
        )
    )
    model = keras_mixup.MixupModel(
        keras.Sequential(layers),
        num_classes=2,
        mix_at=mix_at if mix_at == "input" else ["mix"],
        clean_loss_weight=weight,
        seed=0,
    )
    lam = keras.ops.convert_to_tensor(np.array(LAM, "float32"))
    partner = keras.ops.convert_to_tensor(np.array(PARTNER, "int32"))
    model.engine.draw = lambda *args, **kwargs: (lam, partner)
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    before = [w.tolist() for w in model.model.layers[-1].get_weights()]
    x, y = np.array(X, "float32"), np.array(Y)
    history = model.fit(x, y, batch_size=4, shuffle=False, verbose=0).history
    after = [w.tolist() for w in model.model.layers[-1].get_weights()]
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    return {
        "before": before,
        "after": after,
        "history": {k: v[0] for k, v in history.items()},
        "evaluated": sorted(evaluated),
    }


def step():
    """Every scenario: `{"input_0.5": run("input", 0.5), ...}`."""
    return {
        f"{mix_at}_{weight}": run(mix_at, weight)
        for mix_at in ("input", "latent")
        for weight in (0.5, 2.0)
    }


if __name__ == "__main__":
    print(json.dumps(step()))
