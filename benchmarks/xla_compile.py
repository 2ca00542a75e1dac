"""CPU seconds to compile lam draws and a small `MixupModel` under XLA.

    python benchmarks/xla_compile.py            # every case, each alone
    python benchmarks/xla_compile.py --case tfp # one case
    python benchmarks/xla_compile.py --alg default  # TF's default RNG

Each case runs in a process of its own (the first XLA compile of a process
pays a fixed start-up cost; a warm-up compile takes it before the clock
starts) and prints CPU seconds, `time.process_time()`, which a loaded
machine inflates less than wall time. Cases: `tfp` and `package` compile
and run one draw of 8 lams, Beta(0.2, 0.2), under `tf.function(jit_compile=
True)`: `tfp.distributions.Beta(...).sample` (the sampler under XLA before
this package had its own) and `keras_mixup.draws.sample_lambda_tf`, then
time 200 more draws; `plain`, `xla` and `xla_switch` build a small CNN in
`MixupModel` (mixup; mixup or CutMix, switched per batch; CutMix; FMix),
compile it with `jit_compile=False` / `True`, fit one step of 32 examples,
then time 20 more steps. `--alg default` draws every stateless value under
XLA with TensorFlow's default algorithm instead of ThreeFry (what the
package did before `keras_mixup.backend.stateless_algorithm`).
"""

import argparse
import os
import subprocess
import sys
import time

__all__ = ["CASES", "main", "run_case"]

CASES = (
    "tfp",
    "package",
    "plain",
    "xla",
    "xla_switch",
    "xla_cutmix",
    "xla_fmix",
)
_VARIANTS = {
    "xla_switch": {"cutmix_alpha": 1.0, "switch_prob": 0.5},
    "xla_cutmix": {"variant": "cutmix"},
    "xla_fmix": {"variant": "fmix"},
}


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
    model = keras_mixup.MixupModel(
        net, alpha=0.2, num_classes=10, seed=0, **_VARIANTS.get(case, {})
    )
    model.compile(
        "adam",
        keras.losses.CategoricalCrossentropy(from_logits=True),
        jit_compile=case != "plain",
    )
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    compiled = time.process_time() - start
    start = time.process_time()
    model.fit(x, y, batch_size=32, epochs=20, verbose=0)
    per_step = (time.process_time() - start) / 20 * 1e3
    return (
        f"compile and one step {compiled:.2f} s, then {per_step:.1f} ms a step"
    )


def run_case(case, alg="threefry"):
    """Runs one case in this process (`alg="default"`: TensorFlow's
    default algorithm for the stateless draws under XLA) and returns its
    line."""
    import tensorflow as tf

    from keras_mixup import backend, compat

    if alg == "default":
        backend.stateless_algorithm = lambda: "auto_select"

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
    parser.add_argument(
        "--alg",
        choices=("threefry", "default"),
        default="threefry",
        help="the algorithm of the stateless draws under XLA",
    )
    args = parser.parse_args(argv)
    if args.case:
        print(f"{run_case(args.case, args.alg)} ({args.alg})", flush=True)
        return
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for case in CASES:
        subprocess.run(
            [sys.executable, __file__, "--case", case, "--alg", args.alg],
            env=env,
            check=True,
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
