"""FMix (Harris et al., arXiv:2002.12047): a low-frequency mask of the
partner's pixels.

    lam ~ Beta(alpha, alpha)
    g = irfftn(z * max(|f|, 1 / max(sizes)) ** -decay_power)

with `z` complex standard Gaussian Fourier coefficients (one set per
example, or per batch in `"batch"` mode; Box-Muller pairs of uniforms)
over the half spectrum of the cut axes (`f` the frequencies of
`numpy.fft.fftfreq`, of `rfftfreq` along the last axis): the reference
code's construction. The `round(lam * n)` largest values of `g`, of the
`n` positions along the cut axes, keep the example's own pixels; the
others take the partner's. The threshold is each example's k-th largest
value, exact, found for the whole batch at once by a radix select (three
histograms of 11, 11 and 10 bits of order keys of the values: static
shapes, no sort; rows of at most 1024 values take a bisection over
the 32 bits of those keys instead, one count a bit, the same value); on
TensorFlow the threshold and the mask run as one XLA computation where
`fused` allows (the same result as without).
The label weight is the exact fraction of positions kept, `round(lam * n)
/ n` (of values tying the threshold, the first in position order).

Large fields (static sizes whose `band` has at most a quarter of the
coefficients: 224x224 at decay 3) are made on their low band alone and
upsampled exactly (trigonometric interpolation). Their threshold is still
the full-size field's k-th largest value, found from a bracket: the band
grid's values a few ranks either side of the grid's own threshold. The
runs of 8 consecutive values that straddle it are gathered (every value
inside it lies in one), their values inside it cut into 4096 bins; one
histogram gives the bin of the k-th largest, and one pass per rank
within that bin (almost always one or two) its value. The count is
checked, and a batch where it is off (values tied, a field far from its
grid, too many straddling runs) takes the radix select (see the guide
"Variants"). On PyTorch, which runs ops one by one, the radix select is
a sort instead (the same masks): NumPy's of the rows on the CPU, which
gives the threshold, a stable `torch.argsort` on a GPU. The paste is
`spatial.select`: on TensorFlow and JAX a select of the values' bits,
which XLA runs on CPU far faster than a select on a stored mask.

The mask's complement is the mask of `-g` for `1 - lam`, and `-g` is
distributed as `g`: FMix is symmetric under swapping the two examples, so
it has the inputs-only form (lam ~ Beta(alpha + 1, alpha), the reference's
`reformulate=True`). A mask has no box rule: detection boxes are refused.
"""

import functools
import math

from keras_mixup import backend, blending, checks, compat, options, spatial
from keras_mixup.variants import base

__all__ = [
    "BAND_TOLERANCE",
    "FMix",
    "MIN_GRID",
    "band",
    "fmix_mask",
    "frequency_scale",
    "low_frequency_fields",
    "top_mask",
]

OPTIONS = (
    options.variant_alpha("fmix", "FMix"),
    options.variant_option(
        "fmix",
        "fmix_decay_power",
        3.0,
        lambda value: checks.check_number(
            value,
            "fmix_decay_power",
            " (FMix's decay of the Fourier coefficients, 1 / f ** decay_power)",
        ),
        "FMix's decay: the Fourier coefficients of its masks are scaled "
        "by 1 / f ** decay_power, a finite number above 0; larger values "
        "give smoother masks with fewer, larger regions (the paper's "
        "default is 3).",
    ),
)


def frequency_scale(sizes, decay_power, grid=None):
    """The scale of each Fourier coefficient of the half spectrum,
    `max(|f|, 1 / max(sizes)) ** -decay_power`, float32 of shape `[*grid[:-1],
    grid[-1] // 2 + 1]` (`f` the frequencies of `numpy.fft.fftfreq` along
    each axis but the last, of `numpy.fft.rfftfreq` along the last, in
    cycles per position of a field of `sizes`; `grid`, the sizes of the
    spectrum's grid, defaults to `sizes`: an odd `grid[j] < sizes[j]` keeps
    the `grid[j]` lowest frequencies along axis `j`, see `band`)."""
    ops = backend.ops()
    np = ops.numpy
    grid = sizes if grid is None else grid
    squared = None
    floats = [ops.core.cast(size, "float32") for size in sizes]
    for j, size in enumerate(grid):
        last = j == len(grid) - 1
        index = np.arange(size // 2 + 1 if last else size, dtype="int32")
        half = size // 2
        signed = index if last else np.mod(index + half, size) - half
        frequency = ops.core.cast(signed, "float32") / floats[j]
        shape = [1] * len(grid)
        shape[j] = -1
        term = np.reshape(frequency * frequency, shape)
        squared = term if squared is None else squared + term
    largest = floats[0]
    for size in floats[1:]:
        largest = np.maximum(largest, size)
    magnitude = np.maximum(np.sqrt(squared), 1.0 / largest)
    return np.power(magnitude, -decay_power)


def _inverse_real(real, imag, sizes):
    """The real inverse FFT (`irfftn`) of a batch of half spectra over
    their last `len(sizes)` axes, on the backend the math runs on."""
    name = backend.name()
    if name == "tensorflow":
        import tensorflow as tf

        inverse = (tf.signal.irfft, tf.signal.irfft2d, tf.signal.irfft3d)
        return inverse[len(sizes) - 1](tf.complex(real, imag), list(sizes))
    axes = tuple(range(-len(sizes), 0))
    if name == "jax":
        import jax.numpy as jnp

        spectrum = real + 1j * imag.astype(jnp.complex64)
        return jnp.fft.irfftn(spectrum, s=tuple(sizes), axes=axes)
    import torch

    spectrum = torch.complex(real, imag)
    return torch.fft.irfftn(spectrum, s=tuple(sizes), dim=axes)


def _coefficient_uniforms(count, grid, seed):
    """The uniform draws `[2, count, *half]` the coefficients of `count`
    half spectra are made of (`half`: `grid` with the last halved)."""
    last = grid[-1] // 2 + 1
    return backend.uniform([2, count, *grid[:-1], last], seed)


def _fields(uniforms, sizes, decay_power, grid=None):
    """The fields of `_coefficient_uniforms` on `grid` (default `sizes`;
    see `frequency_scale`): Box-Muller makes each pair of uniforms one
    complex standard Gaussian coefficient."""
    np = backend.ops().numpy
    grid = sizes if grid is None else grid
    if uniforms.shape[1] == 0:  # no fields: PyTorch's FFT refuses them
        return np.zeros([0, *grid], "float32")
    torch_ = backend.name() == "torch"
    if torch_ and all(isinstance(n, int) for n in (*sizes, *grid)):
        key = (tuple(sizes), float(decay_power), tuple(grid))
        scale = _torch_scale(*key, uniforms.device)
    else:
        scale = frequency_scale(sizes, decay_power, grid)[None]
    if torch_:  # the same ops, in place
        import torch

        radius = uniforms[0].neg().log1p_().mul_(-2.0).sqrt_().mul_(scale)
        angle = uniforms[1].mul(2.0 * math.pi)
        real = torch.cos(angle).mul_(radius)
        return _inverse_real(real, angle.sin_().mul_(radius), grid)
    radius = np.sqrt(-2.0 * np.log1p(-uniforms[0])) * scale
    cosine, sine = _unit_circle(uniforms[1])
    return _inverse_real(radius * cosine, radius * sine, grid)


#: The Taylor coefficients of `sin(x) / x` and `cos(x)` in `x ** 2`,
#: highest first: within 2e-9 of them for `|x| <= pi / 4`.
_SINE = tuple((-1) ** j / math.factorial(2 * j + 1) for j in range(4, -1, -1))
_COSINE = tuple((-1) ** j / math.factorial(2 * j) for j in range(5, -1, -1))


def _unit_circle(turns):
    """`(cos, sin)` of the angles `2 pi turns`, for `turns` in `[0, 1)`.

    On JAX, whose CPU `cos` and `sin` cost about 3 ns a value each (most
    of FMix's draw at 32x32), polynomials of the angle's offset from the
    nearest quarter turn (exactly reduced: `4 turns - round(4 turns)`),
    within float32 rounding of `cos` and `sin`; on TensorFlow, whose are
    vectorised, `cos` and `sin` (PyTorch's Box-Muller is `_fields`' own,
    in place)."""
    np = backend.ops().numpy
    if backend.name() != "jax":
        angle = (2.0 * math.pi) * turns
        return np.cos(angle), np.sin(angle)
    quarters = 4.0 * turns
    quadrant = np.round(quarters)
    offset = (quarters - quadrant) * (0.5 * math.pi)  # |offset| <= pi / 4
    square = offset * offset
    sine, cosine = _SINE[0], _COSINE[0]
    for term in _SINE[1:]:
        sine = sine * square + term
    for term in _COSINE[1:]:
        cosine = cosine * square + term
    sine = offset * sine
    quadrant = backend.ops().core.cast(quadrant, "int32") % 4
    swap = quadrant % 2 == 1
    cos_q, sin_q = np.where(swap, sine, cosine), np.where(swap, cosine, sine)
    cos_sign = np.where((quadrant == 1) | (quadrant == 2), -1.0, 1.0)
    sin_sign = np.where(quadrant >= 2, -1.0, 1.0)
    return cos_sign * cos_q, sin_sign * sin_q


@functools.lru_cache(maxsize=16)
def _torch_scale(sizes, decay_power, grid, device):
    """`frequency_scale(sizes, decay_power, grid)[None]` on PyTorch's
    `device`, for static sizes: made once (some twenty small ops)."""
    return frequency_scale(sizes, decay_power, grid)[None].to(device)


def low_frequency_fields(count, sizes, decay_power, seed):
    """Draws `count` real Gaussian fields whose spectrum decays as 1 / f **
    decay_power.

    Args:
        count: the number of fields, an int or a scalar int tensor.
        sizes: the sizes of each field (1 to 3 ints or scalar tensors).
        decay_power: the decay, a float above 0.
        seed: a seed, as `keras_mixup.backend.uniform` takes it.

    Returns:
        float32 `[count, *sizes]`: the real inverse FFT (`irfftn`, as the
        reference code) of a half spectrum of complex standard Gaussian
        coefficients scaled by `frequency_scale(sizes, decay_power)`.
    """
    uniforms = _coefficient_uniforms(count, sizes, seed)
    return _fields(uniforms, sizes, decay_power)


#: The low band's tolerance: the root-mean-square of the coefficients it
#: leaves out, relative to the whole field's (see `band`).
BAND_TOLERANCE = 1e-3


@functools.lru_cache(maxsize=64)
def band(sizes, decay_power, tolerance=BAND_TOLERANCE):
    """The grid of FMix's low band for fields of `sizes`, or `None`.

    The coefficients fall as 1 / f ** decay_power, so a field is almost
    all low frequencies: the band keeps those of index at most `K` along
    each axis (an odd grid of `2 K + 1`; an axis of at most that size is
    kept whole), `K` the smallest whose left-out coefficients hold at
    most `tolerance` of the field's root-mean-square.

    Args:
        sizes: a tuple of ints, the sizes of each field.
        decay_power: the decay, a float above 0.
        tolerance: the bound on the part left out. Defaults to
            `BAND_TOLERANCE`.

    Returns:
        A tuple of ints, the grid, if it has at most a quarter of the
        coefficients of the whole spectrum; `None` otherwise (the field is
        then made whole: small images, slow decays).
    """
    import numpy

    axes = [numpy.fft.fftfreq(n, 1.0 / n) for n in sizes[:-1]]
    axes.append(numpy.arange(sizes[-1] // 2 + 1, dtype="float64"))
    index = numpy.meshgrid(*axes, indexing="ij")
    frequency = numpy.sqrt(
        sum((k / n) ** 2 for k, n in zip(index, sizes, strict=True))
    )
    scale = numpy.maximum(frequency, 1.0 / max(sizes)) ** -decay_power
    energy = (scale**2 * numpy.where(index[-1] > 0, 2.0, 1.0)).ravel()
    chebyshev = numpy.max(numpy.abs(index), axis=0).astype("int64").ravel()
    left_out = numpy.bincount(chebyshev, energy)[::-1].cumsum()[::-1]
    within = numpy.sqrt(numpy.append(left_out[1:], 0.0) / left_out[0])
    top = int(numpy.argmax(within <= tolerance))
    grid = tuple(min(2 * top + 1, n) for n in sizes)
    if 4 * math.prod(grid[:-1]) * (grid[-1] // 2 + 1) > math.prod(
        sizes[:-1]
    ) * (sizes[-1] // 2 + 1):
        return None
    return grid


@functools.lru_cache(maxsize=64)
def _interpolation(size, grid):
    """float32 `[size, grid]`: a band-limited periodic field at `size`
    positions from its values at `grid` (odd) positions evenly spaced
    (trigonometric interpolation, exact: the inverse FFT of the band's
    coefficients zero-padded to `size`, as a matrix)."""
    import numpy

    offset = numpy.arange(size)[:, None] / size - numpy.arange(grid) / grid
    waves = numpy.arange(1, (grid - 1) // 2 + 1)[:, None, None]
    kernel = 1.0 + 2.0 * numpy.cos(2.0 * math.pi * waves * offset).sum(0)
    return (kernel / grid).astype("float32")


def _upsample(fields, sizes):
    """Fields of a band (`band`) at full `sizes`, from their values
    `[count, *grid]` at the grid's points: one matrix product along each
    axis the band shortened."""
    ops = backend.ops()
    letters = "abc"[: len(sizes)]
    for j, size in enumerate(sizes):
        grid = fields.shape[1 + j]
        if grid == size:
            continue
        matrix = ops.core.convert_to_tensor(_interpolation(size, grid))
        out = letters.replace(letters[j], "z")
        fields = ops.numpy.einsum(
            f"z{letters[j]},n{letters}->n{out}", matrix, fields
        )
    return fields


#: The fewest values of a band's grid its bracket is taken on; on a
#: smaller grid, the threshold is the whole field's radix select.
MIN_GRID = 1024

#: The bracket around the threshold: the grid's values this many ranks
#: either side of the threshold's rank on the grid (`_coarse_bracket`),
#: and the number of equal bins it is cut into (`_bin_threshold`).
_BRACKET_RANKS = 14
_BRACKET_BINS = 4096
#: The most rounds of `_bin_threshold` before the radix select.
_MAX_ROUNDS = 8
#: The halvings of `_coarse_bracket`.
_BISECTIONS = 14


def _bins(flat, low, scale):
    """Each value's bin of its bracket: 1 to `_BRACKET_BINS` inside, 0
    below, `_BRACKET_BINS + 1` above (a non-decreasing function of the
    value, so the values of a bin and above are those above a threshold)."""
    np = backend.ops().numpy
    place = np.clip(np.floor((flat - low) * scale), -1.0, _BRACKET_BINS)
    return backend.ops().core.cast(place, "int32") + 1


#: The tile select (`_tile_top`): each row cut into runs of `_TILE`
#: consecutive values; at most `_STRADDLING` of them (a fraction of the
#: row's runs) may straddle the bracket before the radix select takes over.
_TILE = 8
_STRADDLING = 1 / 8


def _coarse_bracket(coarse, count, total):
    """`(low, high)` `[count, 1]`: values about `_BRACKET_RANKS` ranks of
    the grid either side of the rank of each row's `count`-th largest of
    `total` (widened past the grid's extremes at the ends): found by
    `_BISECTIONS` halvings of the grid's range, one count of the grid's
    values each (XLA's sort is slow on CPU)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    size = coarse.shape[1]
    rank = cast(np.round(cast(count, "float32") * (size / total)), "int32")
    ends = [rank - _BRACKET_RANKS, rank + _BRACKET_RANKS]
    wanted = np.concatenate(ends, 0)[:, None]
    values = np.concatenate([coarse, coarse], 0)
    top = np.max(values, axis=1, keepdims=True)
    bottom = np.min(values, axis=1, keepdims=True)
    # Invariant: at least `wanted` values are >= bottom, fewer are > top.
    for _ in range(_BISECTIONS):
        middle = 0.5 * (top + bottom)
        above = np.sum(cast(values >= middle, "int32"), axis=1, keepdims=True)
        enough = above >= wanted
        bottom = np.where(enough, middle, bottom)
        top = np.where(enough, top, middle)
    rows = ops.core.shape(coarse)[0]
    high, low = top[:rows], bottom[rows:]
    width = high - low
    high = np.where((rank - _BRACKET_RANKS < 1)[:, None], high + width, high)
    low = np.where((rank + _BRACKET_RANKS > size)[:, None], low - width, low)
    return low, high


def _bin_threshold(values, low, high, rank):
    """`(threshold, feasible)`: each row's `rank`-th largest of `values`
    `[rows, m]` (all of them inside `[low, high]`, or `-inf`), from one
    histogram of `_BRACKET_BINS` equal bins of the bracket and one pass
    per rank within the bin that holds it; `feasible` is false where that
    rank is above `_MAX_ROUNDS` (the threshold is then not found)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    rows = ops.core.shape(values)[0]
    scale = _BRACKET_BINS / (high - low)
    bins = _bins(values, low, scale)
    size = _BRACKET_BINS + 2
    offsets = np.arange(rows, dtype="int32")[:, None] * size
    histogram = _bincount(np.reshape(bins + offsets, [-1]), rows * size)
    histogram = np.flip(np.reshape(histogram, [rows, size]), 1)
    from_top = _cumulative_counts(histogram)
    below = np.sum(cast(from_top < rank[:, None], "int32"), axis=1)
    above = np.take_along_axis(
        from_top, np.maximum(below - 1, 0)[:, None], axis=1
    )[:, 0]
    chosen = (size - 1 - below)[:, None]
    within = rank - np.where(below > 0, above, 0)
    feasible = within <= _MAX_ROUNDS
    within = np.where(feasible, within, 0)[:, None]
    candidates = np.where(np.equal(bins, chosen), values, -math.inf)

    def body(step, threshold):
        below_it = np.where(candidates < threshold, candidates, -math.inf)
        largest = np.max(below_it, axis=1)
        return step + 1, np.where(step < within, largest[:, None], threshold)

    start = np.full([rows, 1], math.inf, dtype="float32")
    _, threshold = ops.core.while_loop(
        lambda step, _: step < np.max(within), body, (np.array(0), start)
    )
    return threshold, feasible


def _straddling_runs(padded, low, high, runs, slots):
    """`(gathered, filled, whole, place)` of `_tile_top`: the values of
    each row's first `slots` runs of `_TILE` that straddle `[low, high]`
    (`[rows, slots * _TILE]`, `filled` false past the runs found), the
    number of values in the runs wholly above `high`, and each run's place
    among the straddling runs of its row (the last: how many there are)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    rows = ops.core.shape(padded)[0]
    tiles = np.reshape(padded, [rows, runs, _TILE])
    largest, smallest = np.max(tiles, axis=2), np.min(tiles, axis=2)
    straddling = np.logical_and(largest >= low, smallest <= high)
    whole = _TILE * np.sum(cast(smallest > high, "int32"), axis=1)
    place = _cumulative_counts(cast(straddling, "int32"))
    offsets = np.arange(rows, dtype="int32")[:, None]
    ids = np.where(
        np.logical_and(straddling, place <= slots),
        offsets * slots + place - 1,
        rows * slots,
    )
    index = np.arange(1, runs + 1, dtype="int32")[None] + offsets * 0
    which = blending.segment_sum(
        np.reshape(index, [-1]), np.reshape(ids, [-1]), rows * slots + 1
    )
    which = np.reshape(which[:-1], [rows, slots]) - 1  # -1: an empty slot
    gathered = np.take(
        np.reshape(padded, [rows * runs, _TILE]),
        np.reshape(offsets * runs + np.maximum(which, 0), [-1]),
        axis=0,
    )
    gathered = np.reshape(gathered, [rows, slots * _TILE])
    filled = np.reshape(
        np.broadcast_to((which >= 0)[:, :, None], [rows, slots, _TILE]),
        [rows, slots * _TILE],
    )
    return gathered, filled, whole, place


def _tile_top(flat, coarse, lam, sizes=None):
    """`(own, number)` as `_top_positions` (each row's `round(lam * n)`
    largest values, exactly), from a bracket of the grid's values
    (`_coarse_bracket`): the runs of `_TILE` consecutive values that
    straddle it are gathered (a value inside the bracket lies in one), the
    k-th largest is found among their values inside it (`_bin_threshold`),
    the runs wholly above counted. Where a row's bracket misses its k-th
    largest, too many runs straddle it, its bin holds too many values or
    values tie its threshold, the whole radix select (`_top_positions`).

    `sizes`, `(n, m)`, the static lengths of the rows of `flat` and of
    `coarse`, defaults to their static shapes (which the relaxed retracing
    of `blending.xla_compiled` may hide)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    total, size = sizes or (flat.shape[1], coarse.shape[1])
    rows = ops.core.shape(flat)[0]
    flat = np.reshape(flat, [rows, total])
    coarse = np.reshape(coarse, [rows, size])
    runs = -(-total // _TILE)
    slots = max(1, int(runs * _STRADDLING))
    count = cast(np.round(lam * float(total)), "int32")
    low, high = _coarse_bracket(coarse, count, total)
    padded = flat
    if runs * _TILE > total:  # -inf is never inside a bracket
        padded = np.pad(flat, [[0, 0], [0, runs * _TILE - total]])
        padded = np.where(
            np.arange(runs * _TILE)[None] < total, padded, -math.inf
        )
    gathered, filled, whole, place = _straddling_runs(
        padded, low, high, runs, slots
    )
    above = whole + np.sum(
        cast(np.logical_and(filled, gathered > high), "int32"), axis=1
    )
    inside = np.logical_and(
        filled, np.logical_and(gathered >= low, gathered <= high)
    )
    inside_number = np.sum(cast(inside, "int32"), axis=1)
    rank = count - above
    candidates = np.where(inside, gathered, -math.inf)
    threshold, feasible = _bin_threshold(
        candidates, low, high, np.maximum(rank, 1)
    )
    threshold = np.where((count <= 0)[:, None], math.inf, threshold)
    threshold = np.where((count >= total)[:, None], -math.inf, threshold)
    edge = np.logical_or(count <= 0, count >= total)
    fits = np.logical_and(place[:, -1] <= slots, rank >= 1)
    fits = np.logical_and(fits, rank <= inside_number)
    fits = np.logical_or(edge, np.logical_and(fits, feasible))
    # The values at or above the threshold, counted on the gathered runs.
    kept = above + np.sum(cast(candidates >= threshold, "int32"), axis=1)
    kept = np.where(edge, count, kept)

    # Values tied at a row's threshold: the bin's passes skip equal
    # values, so the radix select finds the k-th largest again.
    return ops.core.cond(
        np.all(np.logical_and(fits, np.equal(kept, count))),
        lambda: (flat >= threshold, count),
        lambda: _top_positions(flat, lam),
    )


def _band_mask(uniforms, lam, sizes, decay_power, grid, fused):
    """`(own, number)` as `_top_positions` for fields made on a band
    (`band`) and upsampled: exactly the top `round(lam * n)` positions of
    the full-size field, found from a bracket of the grid's values
    (`_tile_top`; the whole field's radix select on a grid of under
    `MIN_GRID` values). Only the select runs under XLA with `fused`
    (XLA's FFT and matrix products are slower on CPU than TensorFlow's)."""
    ops = backend.ops()
    np = ops.numpy
    # The grid's irfft, scaled: the field (of `sizes`) at the grid's points.
    scale = math.prod(grid) / math.prod(sizes)
    coarse = _fields(uniforms, sizes, decay_power, grid) * scale
    fields = _upsample(coarse, sizes)
    flat = np.reshape(fields, [-1, math.prod(sizes)])
    if math.prod(grid) < MIN_GRID:
        positions = blending.xla_compiled(_top_positions) if fused else None
        own, number = (positions or _top_positions)(flat, lam)
    else:
        exact = blending.xla_compiled(_tile_top) if fused else None
        coarse = np.reshape(coarse, [-1, math.prod(grid)])
        statics = (math.prod(sizes), math.prod(grid))
        own, number = (exact or _tile_top)(flat, coarse, lam, statics)
    return np.reshape(own, ops.core.shape(fields)), number


def fmix_mask(lam, sizes, decay_power, seed, *, fused=False):
    """FMix's masks: one per lam, of `sizes`.

    Args:
        lam: float32 `[count]`, the fraction of each mask to keep.
        sizes: the sizes of each mask (ints or scalar tensors).
        decay_power: the decay, a float above 0.
        seed: a seed, as `keras_mixup.backend.uniform` takes it.
        fused: whether to find the thresholds as XLA computations
            (TensorFlow; the same result). Defaults to `False`.

    Returns:
        `(own, kept)` as `top_mask`: where static sizes have a `band`, the
        field is made on it and upsampled exactly; on a grid of at least
        `MIN_GRID` values the threshold is found on the grid (the kept
        fraction then follows lam closely, not exactly, and is exact: the
        positions counted); otherwise the top `round(lam * n)` positions.
    """
    count = backend.ops().core.shape(lam)[0]
    static = all(isinstance(size, int) for size in sizes)
    grid = band(tuple(sizes), float(decay_power)) if static else None
    if grid is None:
        fields = low_frequency_fields(count, sizes, decay_power, seed)
        return top_mask(fields, lam, fused=fused)
    uniforms = _coefficient_uniforms(count, grid, seed)
    own, number = _band_mask(
        uniforms, lam, tuple(sizes), decay_power, grid, fused
    )
    ops = backend.ops()
    kept = ops.core.cast(number, "float32") / float(math.prod(sizes))
    return own, kept


#: The radix select's digits, most significant first (32 bits in all).
_DIGITS = ((21, 11), (10, 11), (0, 10))
_SIGN = -(2**31)


def _bincount(bins, length):
    """The count of each int32 value of `bins` in `[0, length)`, int32
    `[length]`, with a static length (for XLA and `jax.jit`)."""
    name = backend.name()
    if name == "tensorflow":
        import tensorflow as tf

        if compat.is_xla():  # XLA has no bincount; its scatter is fast
            ones = tf.ones_like(bins)
            return tf.math.unsorted_segment_sum(ones, bins, length)
        return tf.math.bincount(bins, minlength=length, maxlength=length)
    if name == "jax":
        import jax.numpy as jnp

        return jnp.bincount(bins, length=length).astype("int32")
    import torch

    return torch.bincount(bins, minlength=length).to(torch.int32)


#: The block of `_cumulative_counts`'s matrix products.
_BLOCK = 64


@functools.lru_cache(maxsize=8)
def _triangle(size, strict):
    """float32 `[size, size]`: ones where row <= column (< with
    `strict`)."""
    import numpy

    return numpy.triu(numpy.ones((size, size), "float32"), 1 if strict else 0)


def _cumulative_counts(counts):
    """The cumulative sum along axis 1 of int32 counts `[rows, n]` whose
    row totals are below 2 ** 24, int32: two matrix products of float32
    blocks (exact for such integers; XLA's cumulative sum on CPU is a
    slow reduce-window)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    rows, size = ops.core.shape(counts)
    blocks = -(-size // _BLOCK)
    pad = blocks * _BLOCK - size
    values = cast(counts, "float32")
    if pad:
        values = np.pad(values, [[0, 0], [0, pad]])
    values = np.reshape(values, [rows, blocks, _BLOCK])
    within = np.matmul(values, _triangle(_BLOCK, False))
    before = np.matmul(within[:, :, -1], _triangle(blocks, True))
    total = np.reshape(within + before[:, :, None], [rows, blocks * _BLOCK])
    return cast(total[:, :size], "int32")


def _order_keys(values):
    """int32 keys of float32 `values` whose signed order is theirs."""
    np = backend.ops().numpy
    bits = backend.bitcast(values, "int32")
    return np.where(bits < 0, np.bitwise_xor(bits, 2**31 - 1), bits)


def _radix_threshold(flat, count):
    """Each row's `count`-th largest value `[n, 1]` (any value where
    `count` is 0), exact: a radix select over the bits of order keys of
    the values, one histogram of a digit per pass (`_DIGITS`), static
    shapes, no sort."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    rows = ops.core.shape(flat)[0]
    unsigned = np.bitwise_xor(_order_keys(flat), _SIGN)
    active = np.ones_like(flat, dtype="bool")
    rank = np.maximum(count, 1)  # 1-based, among the active values
    found = np.zeros_like(count)
    offsets = np.arange(rows, dtype="int32")[:, None]
    for shift, width in _DIGITS:
        size = 2**width
        digit = np.bitwise_and(np.right_shift(unsigned, shift), size - 1)
        bins = np.where(active, offsets * size + digit, rows * size)
        histogram = _bincount(np.reshape(bins, [-1]), rows * size + 1)
        histogram = np.reshape(histogram[:-1], [rows, size])
        from_top = _cumulative_counts(np.flip(histogram, axis=1))
        below = np.sum(cast(from_top < rank[:, None], "int32"), axis=1)
        chosen = size - 1 - below
        above = np.take_along_axis(
            from_top, np.maximum(below - 1, 0)[:, None], axis=1
        )[:, 0]
        rank = rank - np.where(below > 0, above, 0)
        found = np.bitwise_or(found, np.left_shift(chosen, shift))
        active = np.logical_and(active, np.equal(digit, chosen[:, None]))
    return _from_order_keys(np.bitwise_xor(found, _SIGN))[:, None]


#: The longest rows whose threshold is a bisection (`_bisection_threshold`):
#: 32 counting passes over rows this short cost less than the radix
#: select's three histograms (figures in the performance guide).
_SHORT_ROW = 1024


def _from_order_keys(keys):
    """The float32 values of `_order_keys` `keys`."""
    np = backend.ops().numpy
    keys = np.where(keys < 0, np.bitwise_xor(keys, 2**31 - 1), keys)
    return backend.bitcast(keys, "float32")


def _bisection_threshold(flat, count):
    """`_radix_threshold` (each row's `count`-th largest value `[n, 1]`,
    exact) for short rows: a bisection over the 32 bits of order keys of
    the values, most significant first, one count of the keys at or above
    a candidate a bit (no histogram, no scatter)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    keys = _order_keys(flat)
    rank = np.maximum(count, 1)[:, None]  # 1-based

    def body(bit, found):
        # `found` and `candidate`: order keys offset by 2 ** 31 (unsigned).
        step = np.left_shift(np.array(1, "int32"), 31 - bit)
        candidate = np.bitwise_or(found, step)
        signed = np.bitwise_xor(candidate, _SIGN)
        above = np.sum(cast(keys >= signed, "int32"), axis=1, keepdims=True)
        return np.where(above >= rank, candidate, found)

    start = np.zeros_like(rank)
    found = ops.core.fori_loop(0, 32, body, start)
    return _from_order_keys(np.bitwise_xor(found, _SIGN))


def _top_positions(flat, lam):
    """`(own, number)`: the mask of `top_mask` for fields `[count, total]`
    and the number of positions it keeps, int32 `[count]`."""
    ops = backend.ops()
    np = ops.numpy
    total = ops.core.cast(ops.core.shape(flat)[1], "float32")
    count = ops.core.cast(np.round(lam * total), "int32")
    if backend.name() != "torch":
        short = flat.shape[1] is not None and flat.shape[1] <= _SHORT_ROW
        select = _bisection_threshold if short else _radix_threshold
        threshold = select(flat, count)
    elif flat.device.type == "cpu":  # the check below is free on the host
        threshold = _cpu_threshold(flat, count)
    else:
        return _sorted_positions(flat, count)
    own = np.logical_and(flat >= threshold, count[:, None] > 0)
    number = np.sum(ops.core.cast(own, "int32"), axis=1)
    return ops.core.cond(
        np.all(np.equal(number, count)),
        lambda: (own, number),
        lambda: _first_ties(flat, threshold, count),
    )


def _sorted_positions(flat, count):
    """`(own, number)` as `_top_positions`, on a PyTorch GPU: a stable sort
    of each row, largest first (values tying keep their position order),
    and the first `count` of each kept. Eager PyTorch runs the radix
    select's ops one by one; its sort is one kernel, a few times faster.
    (On the CPU, where PyTorch's sort is a scalar one, `_cpu_threshold`.)"""
    import torch

    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    places = torch.arange(flat.shape[1], device=flat.device)
    ranks = torch.empty_like(order).scatter_(1, order, places.expand_as(order))
    own = ranks < count[:, None]
    return own, torch.sum(own, dim=1, dtype=torch.int32)


def _cpu_threshold(flat, count):
    """Each row's `count`-th largest value `[n, 1]` (the largest where
    `count` is 0) of a PyTorch CPU tensor, from NumPy's sort of its rows
    (the tensor's own memory, no copy; the sorted rows a new array)."""
    import numpy
    import torch

    values = numpy.sort(flat.detach().numpy(), axis=1)
    size = flat.shape[1]
    place = torch.clamp(size - count.to(torch.int64), max=size - 1)
    return torch.from_numpy(values).gather(1, place[:, None])


def _first_ties(flat, threshold, count):
    """`(own, number)`: the values above each row's `threshold` `[count,
    1]` (its `count`-th largest value) and, of those equal to it, the
    first in position order, as many as make `count`."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    greater = flat > threshold
    equal = np.equal(flat, threshold)
    need = count - np.sum(cast(greater, "int32"), axis=1)
    ties = np.cumsum(cast(equal, "int32"), axis=1)
    own = np.logical_or(greater, np.logical_and(equal, ties <= need[:, None]))
    return own, np.sum(cast(own, "int32"), axis=1)


def top_mask(fields, lam, *, fused=False):
    """Each field's `round(lam * n)` largest values (of its `n`).

    Args:
        fields: float32 `[count, *sizes]`.
        lam: float32 `[count]`, the fraction of each field to keep.
        fused: whether to find them as one XLA computation (TensorFlow;
            the same result). Defaults to `False`.

    Returns:
        `(own, kept)`: bool `[count, *sizes]`, whether a position is among
        the largest (of values tying the k-th largest, the first in
        position order), and float32 `[count]`, the fraction of positions
        kept: exactly `round(lam * n) / n`.
    """
    ops = backend.ops()
    shape = ops.core.shape(fields)
    total = 1
    for size in shape[1:]:
        total = total * size
    # No -1 in the reshape: count may be 0.
    fields = ops.numpy.reshape(fields, [shape[0], total])
    positions = blending.xla_compiled(_top_positions) if fused else None
    own, number = (positions or _top_positions)(fields, lam)
    kept = ops.core.cast(number, "float32") / ops.core.cast(total, "float32")
    return ops.numpy.reshape(own, shape), kept


def _image_mask(own, rank, axes):
    """The mask `[count, *sizes]` (sizes in the order of `axes`) shaped to
    broadcast against a rank-`rank` tensor cut along `axes`."""
    ops = backend.ops()
    order = sorted(axes)
    if list(order) != list(axes):
        own = ops.numpy.transpose(
            own, [0, *(1 + list(axes).index(a) for a in order)]
        )
    shape = ops.core.shape(own)
    target = [shape[0]] + [1] * (rank - 1)
    for j, axis in enumerate(order):
        target[axis] = shape[1 + j]
    return ops.numpy.reshape(own, target)


class FMix(base.Variant):
    """A low-frequency mask of the partner's pixels in each example."""

    name = "fmix"
    unmixed_params = {"own": True}
    options = OPTIONS
    alpha_option = "fmix_alpha"
    spatial = True
    keeps_values = True
    inputs_only_form = True
    takes = frozenset(base.TARGETS[:4])

    def draw(self, context):
        np = backend.ops().numpy
        lam = np.reshape(context.lam(self.alpha), [-1])
        sizes = tuple(context.image_sizes())
        decay = self.config["fmix_decay_power"]
        static = all(isinstance(size, int) for size in sizes)
        fused = static and blending.use_fused(self.config["fused"])
        own, kept = fmix_mask(lam, sizes, decay, context.seed(0), fused=fused)
        return base.Draw(np.reshape(kept, context.shape), None, {"own": own})

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        np = backend.ops().numpy
        own = _image_mask(draw.params["own"], rank, axes)
        if backend.name() == "torch":  # no Keras take: its int64 copy
            image = checks.to_tensor(image)
            partner = image.index_select(0, draw.partner_index)
        else:
            partner = np.take(image, draw.partner_index, axis=0)
        return spatial.select(own, image, partner)
