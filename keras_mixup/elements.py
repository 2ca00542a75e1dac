"""The forms a batch takes: `(x, y)`, `(x, y, sample_weight)`, or keras's dict
element `{"images": x, "labels": y}` (the form `keras.layers.MixUp` takes).
"""

import collections

import keras

from keras_mixup import backend, checks, labels

__all__ = [
    "FORMS",
    "INPUT_KEYS",
    "LABELS_KEY",
    "MASKS_KEY",
    "BOXES_KEY",
    "Element",
    "from_dict",
    "is_dict_form",
    "mix_dict",
    "split_dict",
]

#: Keys accepted for the inputs of a dict element.
INPUT_KEYS = ("images", "inputs")
LABELS_KEY = "labels"
MASKS_KEY = "segmentation_masks"
BOXES_KEY = "bounding_boxes"

#: Keras keys that only the map functions (`Mixup` and the variants' own)
#: and `MixupLayer` mix.
_NOT_YET = (BOXES_KEY, MASKS_KEY)

#: A dict element's parts; `labels`, `masks` and `boxes` may be `None`.
Element = collections.namedtuple(
    "Element", ["key", "inputs", "labels", "masks", "boxes"]
)

#: The accepted forms, for error messages.
FORMS = (
    "`(x, y)`, `(x, y, sample_weight)` or a dict `{'images': x, "
    "'labels': y}` (keras's element format; `'inputs'` is accepted for "
    "`'images'`)"
)


def is_dict_form(element):
    """Whether `element` is a dict with inputs under an accepted key."""
    return isinstance(element, dict) and any(
        key in element for key in INPUT_KEYS
    )


def from_dict(element, owner):
    """Splits a dict element into `(input_key, inputs, labels)`.

    Args:
        element: a dict with exactly one of `INPUT_KEYS` and `"labels"`.
        owner: the name of the caller, for error messages.

    Returns:
        `(key, inputs, labels)`, `key` being the input key used.

    Raises:
        ValueError: for missing labels, two input keys, or other keys.
    """
    keys = sorted(element, key=str)
    input_keys = [key for key in INPUT_KEYS if key in element]
    # `None` labels: split_dict's element with masks or boxes instead.
    others = [k for k in keys if k not in (*INPUT_KEYS, LABELS_KEY)]
    if len(input_keys) != 1 or LABELS_KEY not in element or others:
        hint = ""
        boxes = [k for k in others if k in _NOT_YET]
        if boxes:
            hint = (
                f" {boxes} are mixed by the map functions (Mixup and the "
                "variants' own) and MixupLayer only: drop them here."
            )
        raise ValueError(
            f"A dict passed to {owner} must hold exactly one of "
            f"{INPUT_KEYS} and {LABELS_KEY!r}, and no other key; received "
            f"keys {keys}.{hint}"
        )
    key = input_keys[0]
    return key, element[key], element[LABELS_KEY]


def split_dict(element, owner):
    """Splits keras's dict element, segmentation masks and detection boxes
    included: `{"images": x, "labels": y, "segmentation_masks": m,
    "bounding_boxes": {"boxes": b, "labels": c}}` (labels may be left out
    when masks or boxes are given).

    Returns:
        An `Element`.

    Raises:
        ValueError: for missing labels, two input keys, other keys, or a
            `bounding_boxes` that is not a dict of `"boxes"` and
            `"labels"`.
    """
    extras = {k: element[k] for k in _NOT_YET if k in element}
    rest = {k: v for k, v in element.items() if k not in extras}
    if extras and LABELS_KEY not in rest:
        rest[LABELS_KEY] = None
    key, inputs, y = from_dict(rest, owner)
    found = extras.get(BOXES_KEY)
    if found is not None and (
        not isinstance(found, dict) or sorted(found) != ["boxes", "labels"]
    ):
        raise ValueError(
            f"`{BOXES_KEY}` must be a dict with keys 'boxes' [B, N, 4] and "
            f"'labels' [B, N]; received {describe(found)}."
        )
    return Element(key, inputs, y, extras.get(MASKS_KEY), found)


def mix_dict(engine, element, owner, *, inputs_only=False, prepare=None):
    """Mixes keras's dict element with one draw (see `split_dict`).

    Args:
        engine: the `keras_mixup.engine.MixingEngine`.
        element: the dict.
        owner: the caller's name, for error messages.
        inputs_only: mix the inputs (and masks) only, keeping the labels
            (`Mixup(mix_labels=False)`). Defaults to `False`.
        prepare: a function applied to each input leaf first (a layer's
            cast to its compute dtype), or `None`.

    Returns:
        The dict with the same keys, mixed; `bounding_boxes` gets a
        `"weights"` entry (see `keras_mixup.boxes`).
    """
    parts = split_dict(element, owner)
    x = parts.inputs
    if prepare is not None and backend.ops().core.is_tensor(x):
        x = prepare(x)
    elif prepare is not None:
        x = keras.tree.map_structure(prepare, x)
    x, y, _, size = checks.check_batch(x, parts.labels)
    engine.settings.check_targets(
        target
        for target, part in (
            ("segmentation_masks", parts.masks),
            ("bounding_boxes", parts.boxes),
        )
        if part is not None
    )
    masks = _masks(engine, parts.masks, x)
    draw = engine.draw(size, x, y, inputs_only=inputs_only)
    mixed = engine.apply(draw, x, y, mix_labels=not inputs_only, masks=masks)
    result = {parts.key: mixed[0]}
    if parts.labels is not None:
        result[LABELS_KEY] = mixed[1]
    if masks is not None:
        result[MASKS_KEY] = mixed[3]
    if parts.boxes is not None:
        checked = checks.check_boxes(
            parts.boxes, engine.options["bounding_box_format"]
        )
        result[BOXES_KEY] = engine.apply_boxes(draw, checked, x)
    return result


def _masks(engine, masks, x):
    """Segmentation masks encoded for the variant: one-hot where it blends,
    as given where it only pastes values (integer masks stay integer)."""
    if masks is None:
        return None
    channel_axis = (
        1 if engine.options["data_format"] == "channels_first" else -1
    )
    masks = labels.encode_masks(
        masks,
        engine.options["num_classes"],
        one_hot=not engine.variant.keeps_mask_values,
        channel_axis=channel_axis,
    )
    checks.batch_size(x, masks)
    return masks


def describe(element):
    """`element`'s structure with each leaf as `dtype[shape]`."""
    return keras.tree.map_structure(
        lambda t: f"{backend.dtype_name(t)}{list(t.shape)}", element
    )
