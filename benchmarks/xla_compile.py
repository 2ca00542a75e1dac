"""CPU seconds to compile lam draws and a small `MixupModel` under XLA.

    python benchmarks/xla_compile.py            # every case, each alone
    python benchmarks/xla_compile.py --case tfp # one case

Each case runs in a process of its own (the first XLA compile of a process
pays a fixed start-up cost; a warm-up compile takes it before the clock
starts) and prints CPU seconds, `time.process_time()`, which a loaded
machine inflates less than wall time. Cases: `tfp` and `package` compile
and run one draw of 8 lams, Beta(0.2, 0.2), under `tf.function(jit_compile=
True)`: `tfp.distributions.Beta(...).sample` (the sampler under XLA before
this package had its own) and `keras_mixup.draws.sample_lambda_tf`, then
time 200 more draws; `plain`, `xla` and `xla_switch` build a small CNN in
`MixupModel` (mixup; mixup or CutMix, switched per batch), compile it with
`jit_compile=False` / `True` and fit one step of 32 examples.
"""

import argparse
import os
import subprocess
import sys
import time

__all__ = ["CASES", "main", "run_case"]

CASES = ("tfp", "package", "plain", "xla", "xla_switch")


def _draw_case(case):
    """Compile CPU seconds of one draw, and run CPU ms per draw."""
    import tensorflow as tf
    import tensorflow_probability as tfp

    from keras_mixup import draws

    def sample(seed):
        if case == "tfp":
            beta = tfp.distributions.Beta(tf.constant(0.2), tf.constant(0.2))
            return beta.sample([8], seed=seed)
        return draws.sample_lambda_tf([8], 0.2, seed)

    draw = tf.function(sample, jit_compile=True)
    start = time.process_time()
    draw(tf.constant([1, 2])).numpy()
    compiled = time.process_time() - start
    start = time.process_time()
    for i in range(200):
        draw(tf.constant([1, i])).numpy()
    per_draw = (time.process_time() - start) / 200 * 1e3
    return f"compile {compiled:.2f} s, run {per_draw:.3f} ms per draw"


def _model_case(case):
    """Compile and one `fit` step of a small CNN in `MixupModel`."""
    import keras
    import numpy as np

    import keras_mixup

    x = np.random.default_rng(0).random((32, 16, 16, 3), "float32")
    y = np.arange(32) % 10
    start = time.process_time()
    net = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    switch = {"cutmix_alpha": 1.0, "switch_prob": 0.5}
    model = keras_mixup.MixupModel(
        net,
        alpha=0.2,
        num_classes=10,
        seed=0,
        **(switch if case == "xla_switch" else {}),
    )
    model.compile(
        "adam",
        keras.losses.CategoricalCrossentropy(from_logits=True),
        jit_compile=case != "plain",
    )
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return f"compile and one step {time.process_time() - start:.2f} s"


def run_case(case):
    """Runs one case in this process and returns its line."""
    import tensorflow as tf

    from keras_mixup import compat

    compat.is_xla()  # TFP's import is not compile time
    warm_up = tf.function(
        lambda s: tf.random.stateless_uniform([8], s), jit_compile=True
    )
    warm_up(tf.constant([1, 2])).numpy()
    if case in ("tfp", "package"):
        return f"{case}: {_draw_case(case)}"
    return f"{case}: {_model_case(case)}"


def main(argv=None):
    """Runs `--case`, or every case in a subprocess of its own."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--case", choices=CASES, help="one case (default: all, each alone)"
    )
    args = parser.parse_args(argv)
    if args.case:
        print(run_case(args.case), flush=True)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for case in CASES:
        subprocess.run(
            [sys.executable, __file__, "--case", case], env=env, check=True
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
