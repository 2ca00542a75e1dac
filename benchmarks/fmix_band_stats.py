"""FMix's masks on the low band against the whole field's, on 224x224.

    python benchmarks/fmix_band_stats.py   # about a minute on a CPU

For 2000 lam ~ U(0, 1), the masks of `fmix.fmix_mask` (the field made on
`fmix.band`'s grid, upsampled, its exact top round(lam * n)) and those of the
whole field (`low_frequency_fields` + `top_mask`, the top round(lam * n)):
|kept - lam|, a KS test of kept against U(0, 1), the masks' power below a
few frequencies (their mean removed, of those keeping 10% to 90%), and the
fraction of pixels on a boundary. Also how far the upsampled field is from
NumPy's `irfft2` of the same coefficients zero-padded (docs/guides/variants.md,
"FMix", describes the construction).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import stats  # noqa: E402

from keras_mixup import backend  # noqa: E402
from keras_mixup.variants import fmix  # noqa: E402

__all__ = ["main"]

SIZES = (224, 224)
COUNT, CHUNK = 2000, 100


def _upsampling_error():
    grid = fmix.band(SIZES, 3.0)
    uniforms = fmix._coefficient_uniforms(4, grid, tf.constant([1, 2]))
    scale = np.prod(grid) / np.prod(SIZES)
    coarse = fmix._fields(uniforms, SIZES, 3.0, grid) * scale
    fields = fmix._upsample(coarse, SIZES).numpy()
    u = uniforms.numpy().astype("float64")
    radius = np.sqrt(-2 * np.log1p(-u[0]))
    half = radius * fmix.frequency_scale(SIZES, 3.0, grid).numpy()
    half = half * np.exp(2j * np.pi * u[1])
    top = (grid[0] - 1) // 2
    padded = np.zeros((4, SIZES[0], SIZES[1] // 2 + 1), complex)
    padded[:, : top + 1, : top + 1] = half[:, : top + 1]
    padded[:, -top:, : top + 1] = half[:, -top:]
    expected = np.fft.irfft2(padded, s=SIZES)
    return grid, np.abs(fields - expected).max() / expected.std()


def _masks(lam, whole):
    kept, masks = [], []
    for start in range(0, COUNT, CHUNK):
        part = lam[start : start + CHUNK]
        seed = tf.constant([start, 9])
        if whole:
            fields = fmix.low_frequency_fields(CHUNK, SIZES, 3.0, seed)
            own, fraction = fmix.top_mask(fields, part, fused=True)
        else:
            own, fraction = fmix.fmix_mask(part, SIZES, 3.0, seed, fused=True)
        kept.append(fraction.numpy())
        masks.append(own.numpy()[:8])
    return np.concatenate(kept), np.concatenate(masks)


def _report(name, kept, masks, lam):
    gap = kept - lam
    pvalue = stats.kstest(kept, "uniform").pvalue
    print(
        f"{name}: |kept - lam| max {np.abs(gap).max():.1e}, SD "
        f"{gap.std():.1e}; KS against U(0, 1) p = {pvalue:.2f}"
    )
    m = masks.astype("float64")
    share = m.mean(axis=(1, 2))
    m = m[(share > 0.1) & (share < 0.9)]
    m = m - m.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(m)) ** 2
    f = np.hypot(
        np.fft.fftfreq(SIZES[0])[:, None], np.fft.fftfreq(SIZES[1])[None]
    )
    for cut in (1 / 64, 1 / 32, 1 / 16, 1 / 8):
        low = (power * (f <= cut)).sum((1, 2)) / power.sum((1, 2))
        print(f"  power below {cut:.4f} cycle per pixel: {low.mean():.3f}")
    edges = (masks[:, :, 1:] != masks[:, :, :-1]).mean()
    print(f"  pixels on a boundary: {edges:.3%}")


def main():
    with backend.using_tensorflow():
        grid, error = _upsampling_error()
        print(f"band {grid}; upsampled vs zero-padded irfft2: {error:.1e}")
        lam = tf.random.stateless_uniform([COUNT], [7, 8])
        for name, whole in (("band", False), ("whole field", True)):
            _report(name, *_masks(lam, whole), lam.numpy())


if __name__ == "__main__":
    main()
