"""Runs the `Example:` block of every public docstring in the package."""

import inspect
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_mixup

_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _documented():
    for name in keras_mixup.__all__:
        obj = getattr(keras_mixup, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield name, obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{name}.{attr}", member


EXAMPLES = [
    pytest.param(block, id=f"{name}[{i}]")
    for name, obj in _documented()
    for i, block in enumerate(_BLOCK.findall(inspect.getdoc(obj) or ""))
]


def test_every_public_name_has_an_example():
    undocumented = [
        name
        for name in keras_mixup.__all__
        if name != "__version__"
        and not _BLOCK.search(inspect.getdoc(getattr(keras_mixup, name)) or "")
    ]
    assert undocumented == []


@pytest.mark.parametrize("source", EXAMPLES)
def test_docstring_example_runs(source, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"keras_mixup": keras_mixup, "keras": keras, "np": np, "tf": tf}
    exec(compile(source, "<docstring>", "exec"), namespace)
