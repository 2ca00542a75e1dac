"""FMix (Harris et al., arXiv:2002.12047): a low-frequency mask of the
partner's pixels.

    lam ~ Beta(alpha, alpha)
    g = Re(inverse FFT(z * max(|f|, 1 / max(sizes)) ** -decay_power))

with `z` complex standard Gaussian Fourier coefficients (one set per
example, or per batch in `"batch"` mode) over the frequencies `f` of the
cut axes. The `round(lam * n)` largest values of `g`, of the `n` positions
along the cut axes, keep the example's own pixels; the others take the
partner's. The threshold is each example's k-th largest value, found for
the whole batch at once (a sort of the fields; for large fields a sort of
a strided sample and a top-k of the values between two of its quantiles,
falling back to the sort where that bracket misses), and the label weight
is the exact fraction of positions kept (`round(lam * n) / n`, one more position
for each tie of the threshold value).

The mask's complement is the mask of `-g` for `1 - lam`, and `-g` is
distributed as `g`: FMix is symmetric under swapping the two examples, so
it has the inputs-only form (lam ~ Beta(alpha + 1, alpha), the reference's
`reformulate=True`). A mask has no box rule: detection boxes are refused.
"""

from keras_mixup import backend, checks, options
from keras_mixup.variants import base

__all__ = ["FMix", "frequency_scale", "low_frequency_fields", "top_mask"]

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


def frequency_scale(sizes, decay_power):
    """The scale of each Fourier coefficient, `max(|f|, 1 / max(sizes)) **
    -decay_power`, float32 of shape `sizes` (`f` the frequencies of
    `numpy.fft.fftfreq` along each axis, in cycles per position)."""
    ops = backend.ops()
    np = ops.numpy
    squared = None
    floats = [ops.core.cast(size, "float32") for size in sizes]
    for j, size in enumerate(sizes):
        index = np.arange(size, dtype="int32")
        half = size // 2
        signed = np.mod(index + half, size) - half  # fftfreq * size
        frequency = ops.core.cast(signed, "float32") / floats[j]
        shape = [1] * len(sizes)
        shape[j] = -1
        term = np.reshape(frequency * frequency, shape)
        squared = term if squared is None else squared + term
    largest = floats[0]
    for size in floats[1:]:
        largest = np.maximum(largest, size)
    magnitude = np.maximum(np.sqrt(squared), 1.0 / largest)
    return np.power(magnitude, -decay_power)


def _inverse_along(real, imag, axis):
    """The complex inverse FFT of `(real, imag)` along one `axis` (an
    `ifft2` over that axis and a new axis of size 1)."""
    np = backend.ops().numpy
    real = np.expand_dims(np.moveaxis(real, axis, -1), -2)
    imag = np.expand_dims(np.moveaxis(imag, axis, -1), -2)
    real, imag = backend.ops().math.ifft2((real, imag))
    real = np.moveaxis(np.squeeze(real, -2), -1, axis)
    imag = np.moveaxis(np.squeeze(imag, -2), -1, axis)
    return real, imag


def low_frequency_fields(count, sizes, decay_power, seed):
    """Draws `count` real Gaussian fields whose spectrum decays as 1 / f **
    decay_power.

    Args:
        count: the number of fields, an int or a scalar int tensor.
        sizes: the sizes of each field (1 to 3 ints or scalar tensors).
        decay_power: the decay, a float above 0.
        seed: a seed, as `keras_mixup.backend.normal` takes it.

    Returns:
        float32 `[count, *sizes]`: the real part of the inverse FFT of
        complex standard Gaussian coefficients scaled by
        `frequency_scale(sizes, decay_power)`.
    """
    if isinstance(count, int) and count == 0:  # PyTorch's FFT refuses it
        return backend.ops().numpy.zeros([0, *sizes], "float32")
    real_seed, imag_seed = backend.split(seed)
    scale = frequency_scale(sizes, decay_power)[None]
    real = backend.normal([count, *sizes], real_seed) * scale
    imag = backend.normal([count, *sizes], imag_seed) * scale
    rest = [1]  # the axes left after an ifft2 over the last two
    if len(sizes) >= 2:
        real, imag = backend.ops().math.ifft2((real, imag))
        rest = range(1, len(sizes) - 1)
    for axis in rest:
        real, imag = _inverse_along(real, imag, axis)
    return real


#: Fields of more positions find their threshold in a bracket (see
#: `_bracketed_threshold`); smaller ones sort.
BRACKET_ABOVE = 16384
_STRIDE, _MARGIN, _CANDIDATES = 17, 16, 1024


def _sorted_threshold(flat, count, total):
    """Each row's `count`-th largest value `[n, 1]`, by a sort."""
    np = backend.ops().numpy
    ordered = np.sort(flat, axis=-1)
    index = np.clip(total - count, 0, total - 1)
    return np.take_along_axis(ordered, index[:, None], axis=1)


def _bracketed_threshold(flat, count, total):
    """Each row's `count`-th largest value `[n, 1]`, found among the values
    between two quantiles of a strided sample of the row (one sort of a
    17th of the values and a top-k of at most 1024 of them, instead of a
    sort of all); and bool `[n]`, whether the bracket held it (else the
    value is wrong and `_sorted_threshold` must be used)."""
    ops = backend.ops()
    np, cast = ops.numpy, ops.core.cast
    sample = np.sort(flat[:, ::_STRIDE], axis=-1)
    size = sample.shape[1]
    where = size - cast(count, "float32") * (size / total)
    low = np.clip(cast(np.floor(where), "int32") - _MARGIN, 0, size - 1)
    high = np.clip(cast(np.ceil(where), "int32") + _MARGIN, 0, size - 1)
    low = np.take_along_axis(sample, low[:, None], axis=1)
    high = np.take_along_axis(sample, high[:, None], axis=1)
    above = np.sum(cast(flat > high, "int32"), axis=1)
    within = np.logical_and(flat >= low, flat <= high)
    rank = count - above - 1  # the threshold's rank among `within`
    candidates = np.where(within, flat, float("-inf"))
    top = ops.math.top_k(candidates, _CANDIDATES)[0]
    inside = np.minimum(np.sum(cast(within, "int32"), axis=1), _CANDIDATES)
    held = np.logical_or(count == 0, np.logical_and(rank >= 0, rank < inside))
    index = np.clip(rank, 0, _CANDIDATES - 1)[:, None]
    return np.take_along_axis(top, index, axis=1), held


def _threshold(flat, count, total):
    """Each row's `count`-th largest value, `[n, 1]`: exact, through the
    bracket where it holds for every row, else by a sort."""
    if not isinstance(total, int) or total <= BRACKET_ABOVE:
        return _sorted_threshold(flat, count, total)
    ops = backend.ops()
    threshold, held = _bracketed_threshold(flat, count, total)
    return ops.core.cond(
        ops.numpy.all(held),
        lambda: threshold,
        lambda: _sorted_threshold(flat, count, total),
    )


def top_mask(fields, lam):
    """Each field's `round(lam * n)` largest values (of its `n`).

    Args:
        fields: float32 `[count, *sizes]`.
        lam: float32 `[count]`, the fraction of each field to keep.

    Returns:
        `(own, kept)`: bool `[count, *sizes]`, whether a position is among
        the largest (every position tying the k-th largest value is), and
        float32 `[count]`, the exact fraction of positions kept.
    """
    ops = backend.ops()
    np = ops.numpy
    shape = ops.core.shape(fields)
    total = 1
    for size in shape[1:]:
        total = total * size
    flat = np.reshape(fields, [shape[0], total])  # no -1: count may be 0
    count = ops.core.cast(
        np.round(lam * ops.core.cast(total, "float32")), "int32"
    )
    threshold = _threshold(flat, count, total)
    own = np.logical_and(flat >= threshold, count[:, None] > 0)
    kept = np.mean(ops.core.cast(own, "float32"), axis=1)
    return np.reshape(own, shape), kept


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
        count = context.batch_size if context.per_example else 1
        fields = low_frequency_fields(
            count,
            context.image_sizes(),
            self.config["fmix_decay_power"],
            context.seed(0),
        )
        own, kept = top_mask(fields, lam)
        return base.Draw(np.reshape(kept, context.shape), None, {"own": own})

    def apply_image(self, draw, image, rank, axes, *, kind="inputs"):
        np = backend.ops().numpy
        partner = np.take(image, draw.partner_index, axis=0)
        own = _image_mask(draw.params["own"], rank, axes)
        return np.where(own, image, partner)
