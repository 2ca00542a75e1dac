"""keras_mixup: mixup (Zhang et al., ICLR 2018) for Keras 3 and TensorFlow."""

from keras_mixup import metrics as metrics
from keras_mixup import variants as variants
from keras_mixup.callbacks import MixupSchedule
from keras_mixup.data import (
    CutMix,
    FMix,
    GridMix,
    Mixup,
    Mosaic,
    ResizeMix,
    mix_with,
)
from keras_mixup.draws import sample_lambda
from keras_mixup.gan import MixupGAN
from keras_mixup.knn_features import CountSketch, MeanPool
from keras_mixup.layers import MixupLayer
from keras_mixup.models import MixupModel
from keras_mixup.version import __version__

__all__ = [
    "CountSketch",
    "CutMix",
    "FMix",
    "GridMix",
    "MeanPool",
    "Mixup",
    "MixupGAN",
    "MixupLayer",
    "MixupModel",
    "MixupSchedule",
    "Mosaic",
    "ResizeMix",
    "mix_with",
    "sample_lambda",
    "variants",
    "__version__",
]
