"""ResizeMix and Mosaic read back on one Keras backend, a scenario of the
shared per-backend process (conftest.py's `SHARED`):

    KERAS_BACKEND=torch python tests/scenario_runner.py \
        variant_backend_scenarios.py:resize_and_tile

returns how far ResizeMix's pasted regions are from the partner resized
by `keras.ops.image.resize` on that backend, Mosaic's tiles and CutMix's
pastes (per batch and per example) from the crops written out by hand,
on PyTorch CutMix's boxes in torch ops from those in Keras ops; and
(scenario `fmix_band`) FMix's masks made on a low band (`fmix.fmix_mask`
on 128x128) against the zero-padded inverse FFT in NumPy, their exact
counts, and FMix's paste (`spatial.select`) against `where`, bit for bit
and in its gradient.
"""

import keras
import numpy as np

from keras_mixup.engine import MixingEngine

B, H, W = 6, 20, 24


def _numpy(t):
    return np.asarray(keras.ops.convert_to_numpy(t))


def _resize_error(x):
    engine = MixingEngine(variant="resizemix", num_classes=B, seed=3)
    draw = engine.draw(B, x)
    mixed, labels, _ = engine.apply(draw, x, np.arange(B))
    mixed, labels = _numpy(mixed), _numpy(labels)
    lows, highs = _numpy(draw.params["lows"]), _numpy(draw.params["highs"])
    partner = _numpy(draw.partner_index)
    error = 0.0
    for i in range(B):
        (y0, x0), (y1, x1) = lows[i], highs[i]
        resized = keras.ops.image.resize(
            x[partner[i]], (int(y1 - y0), int(x1 - x0)), antialias=False
        )
        error = max(
            error,
            float(np.abs(mixed[i, y0:y1, x0:x1] - _numpy(resized)).max()),
        )
        kept = 1 - (y1 - y0) * (x1 - x0) / (H * W)
        if partner[i] != i:
            error = max(error, abs(float(labels[i, i]) - kept))
    return error


def _tile_error(x):
    engine = MixingEngine(variant="mosaic", num_classes=B, seed=3)
    draw = engine.draw(B, x)
    mixed = _numpy(engine.apply(draw, x, np.arange(B))[0])
    centre, partners = (
        _numpy(draw.params["centre"]),
        _numpy(draw.partner_index),
    )
    error = 0.0
    for i in range(B):
        cy, cx = centre[i]
        s = [i, *partners[i]]
        tiles = [x[k, ..., 0] for k in s]
        expected = np.block(
            [
                [tiles[0][H - cy :, W - cx :], tiles[1][H - cy :, : W - cx]],
                [tiles[2][: H - cy, W - cx :], tiles[3][: H - cy, : W - cx]],
            ]
        )
        error = max(error, float(np.abs(mixed[i, ..., 0] - expected).max()))
    return error


def _cut_error(x, mode):
    """How far CutMix's images and label weights are from the partner's
    box pasted by hand (each example's box read from the draw)."""
    engine = MixingEngine(variant="cutmix", num_classes=B, seed=3, mode=mode)
    draw = engine.draw(B, x)
    mixed, labels, _ = engine.apply(draw, x, np.arange(B))
    mixed, labels = _numpy(mixed), _numpy(labels)
    lows, highs = _numpy(draw.params["lows"]), _numpy(draw.params["highs"])
    lows, highs = np.broadcast_to(lows, (B, 2)), np.broadcast_to(highs, (B, 2))
    partner, x = _numpy(draw.partner_index), _numpy(x)
    error, label_error = 0.0, 0.0
    for i in range(B):
        (y0, x0), (y1, x1) = lows[i], highs[i]
        expected = x[i].copy()
        expected[y0:y1, x0:x1] = x[partner[i], y0:y1, x0:x1]
        error = max(error, float(np.abs(mixed[i] - expected).max()))
        kept = 1 - (y1 - y0) * (x1 - x0) / (H * W)
        if partner[i] != i:
            label_error = max(label_error, abs(float(labels[i, i]) - kept))
    return error, label_error


def _numpy_bounds(sides, place, inside):
    """`spatial.box_bounds`'s rule written in NumPy (float32)."""
    size = np.array([[H, W]], "float32")
    if not inside:
        lengths = np.round(sides[:, None] * size)
        start = np.floor(place * size) - np.floor(lengths / 2)
        lows = np.minimum(np.maximum(start, 0), size)
        highs = np.minimum(np.maximum(start + lengths, 0), size)
    else:
        lengths = np.round(sides * size)
        lows = np.floor(place * (size - lengths + 1))
        highs = lows + lengths
    kept = 1 - np.prod(highs - lows, axis=1) / (H * W)
    return lows.astype("int32"), highs.astype("int32"), kept


def _bounds_error():
    """How far the boxes of `spatial.box_bounds` on this backend, and the
    one-box scalar form of PyTorch's host path (`spatial._scalar_bounds`),
    are from the rule written in NumPy, on the same draws: `[bounds, kept,
    scalar bounds, scalar kept]`."""
    from keras_mixup import spatial

    rng = np.random.default_rng(1)
    place = rng.random((64, 2)).astype("float32")
    side = rng.random(64).astype("float32")
    errors = [0.0] * 4
    for inside, sides in ((False, side), (True, 1.0 - place)):
        ours = spatial.box_bounds(
            (H, W),
            keras.ops.convert_to_tensor(sides),
            keras.ops.convert_to_tensor(place),
            inside=inside,
        )
        theirs = _numpy_bounds(sides, place, inside)
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            part = min(i, 1)  # lows and highs, then kept
            error = float(np.abs(_numpy(a) - b).max())
            errors[part] = max(errors[part], error)
        for n in range(64):
            one = sides[n] if inside else [sides[n]] * 2
            found = spatial._scalar_bounds((H, W), one, place[n], inside)
            for part, (a, b) in enumerate(
                zip(found, [t[n] for t in theirs], strict=True)
            ):
                error = float(np.abs(np.asarray(a) - b).max())
                errors[2 + min(part, 1)] = max(errors[2 + min(part, 1)], error)
    return errors


def _select_checks():
    """`spatial.select` against `where`: the dtypes whose bits match
    (values with NaN, infinities and -0.0), and whether its gradients
    are `where`'s."""
    from blending_backend_scenarios import _gradients

    from keras_mixup import spatial

    rng = np.random.default_rng(2)
    values = rng.uniform(-3, 3, (4, 5, 6, 3))
    values.flat[[0, 7, 11]] = [np.nan, np.inf, -0.0]
    mask = keras.ops.convert_to_tensor(rng.uniform(size=(4, 5, 6, 1)) < 0.5)
    same = []
    for dtype in ("float16", "float32", "bfloat16", "uint8", "int32"):
        raw = np.abs(values) * 40 if "int" in dtype else values
        x = keras.ops.cast(np.nan_to_num(raw) if "int" in dtype else raw, dtype)
        y = keras.ops.flip(x, 0)
        got = keras.ops.cast(spatial.select(mask, x, y), "float32")
        want = keras.ops.cast(keras.ops.where(mask, x, y), "float32")
        if _numpy(got).tobytes() == _numpy(want).tobytes():
            same.append(dtype)
    x = np.arange(360, dtype="float32").reshape(4, 5, 6, 3)
    weight = keras.ops.convert_to_tensor(x + 1)
    grads = _gradients(
        lambda a, b: keras.ops.sum(spatial.select(mask, a, b) * weight),
        [keras.ops.convert_to_tensor(v) for v in (x, -x)],
    )
    where = np.broadcast_to(_numpy(mask), x.shape)
    expected = (np.where(where, x + 1, 0), np.where(where, 0, x + 1))
    return same, all(
        np.array_equal(_numpy(g), e)
        for g, e in zip(grads, expected, strict=True)
    )


def fmix_band():
    """FMix on a band (`fmix.band`, 43x43 of 128x128): how far the
    upsampled fields are from NumPy's `irfft2` of the same coefficients
    zero-padded (relative to their spread), how far the labels are from
    the pixels counted, the largest |kept - lam|, and the kept fractions
    at lam 0 and 1."""
    from keras_mixup.variants import fmix

    sizes, grid = (128, 128), fmix.band((128, 128), 3.0)
    seed = keras.random.SeedGenerator(5)
    uniforms = fmix._coefficient_uniforms(8, grid, seed)
    coarse = fmix._fields(uniforms, sizes, 3.0, grid) * (43 * 43 / 128**2)
    fields = _numpy(fmix._upsample(coarse, sizes))
    u = _numpy(uniforms).astype("float64")
    scale = _numpy(fmix.frequency_scale(sizes, 3.0, grid))
    half = np.sqrt(-2 * np.log1p(-u[0])) * scale * np.exp(2j * np.pi * u[1])
    padded = np.zeros((8, 128, 65), complex)
    padded[:, :22, :22], padded[:, -21:, :22] = half[:, :22], half[:, -21:]
    expected = np.fft.irfft2(padded, s=sizes)
    lam = np.array([0.0, 1.0, 0.5, 1e-5, 0.99999, 0.3, 0.7, 0.123], "float32")
    own, kept = fmix.fmix_mask(
        keras.ops.convert_to_tensor(lam), sizes, 3.0, seed
    )
    counted = _numpy(own).mean(axis=(1, 2))
    kept = _numpy(kept)
    # The same fields' masks, against NumPy's top round(lam * n) of them.
    own, number = fmix._band_mask(
        uniforms, keras.ops.convert_to_tensor(lam), sizes, 3.0, grid, False
    )
    flat, own = fields.reshape(8, -1), _numpy(own).reshape(8, -1)
    count = np.round(lam.astype("float64") * flat.shape[1]).astype(int)
    top = np.zeros_like(own)
    for row, k in enumerate(count):
        top[row, np.argsort(-flat[row], kind="stable")[:k]] = True
    return {
        "backend": keras.backend.backend(),
        "field_error": float(np.abs(fields - expected).max() / expected.std()),
        "count_error": float(np.abs(kept - counted).max()),
        "lam_error": float(
            np.abs(kept * 128**2 - np.round(lam * 128**2)).max()
        ),
        "numbers": [_numpy(number).tolist(), count.tolist()],
        "top_rows_off": int((own != top).any(axis=1).sum()),
        "ends": [float(kept[0]), float(kept[1])],
        "select": _select_checks(),
    }


def resize_and_tile():
    rng = np.random.default_rng(0)
    x = rng.random((B, H, W, 1)).astype("float32")
    return {
        "backend": keras.backend.backend(),
        "resize_error": _resize_error(x),
        "tile_error": _tile_error(x),
        "cut_errors": [_cut_error(x, mode) for mode in ("batch", "elem")],
        "bounds_error": _bounds_error(),
    }
