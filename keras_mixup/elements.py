"""The forms a batch takes: `(x, y)`, `(x, y, sample_weight)`, or keras's dict
element `{"images": x, "labels": y}` (the form `keras.layers.MixUp` takes).
"""

import tensorflow as tf

__all__ = ["FORMS", "INPUT_KEYS", "LABELS_KEY", "from_dict", "is_dict_form"]

#: Keys accepted for the inputs of a dict element.
INPUT_KEYS = ("images", "inputs")
LABELS_KEY = "labels"

#: Keras keys that keras_mixup does not mix yet.
_NOT_YET = ("bounding_boxes", "segmentation_masks")

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
    others = [k for k in keys if k not in (*INPUT_KEYS, LABELS_KEY)]
    if len(input_keys) != 1 or LABELS_KEY not in element or others:
        hint = ""
        boxes = [k for k in others if k in _NOT_YET]
        if boxes:
            hint = f" {boxes} are not mixed yet: drop them before mixing."
        raise ValueError(
            f"A dict passed to {owner} must hold exactly one of "
            f"{INPUT_KEYS} and {LABELS_KEY!r}, and no other key; received "
            f"keys {keys}.{hint}"
        )
    key = input_keys[0]
    return key, element[key], element[LABELS_KEY]


def describe(element):
    """`element`'s structure with each leaf as `dtype[shape]`."""
    return tf.nest.map_structure(
        lambda t: f"{tf.as_dtype(t.dtype).name}{list(t.shape)}", element
    )
