"""What every entry point shows of the engine it holds."""

import keras

from keras_mixup import backend, options
from keras_mixup.engine import MixingEngine
from keras_mixup.state import load_seed_state, save_seed_state

__all__ = ["HoldsEngine"]


def _option_property(name):
    return property(
        lambda self: self.engine.options[name],
        doc=f"The `{name}` option: {options.OPTIONS[name].doc}",
    )


class HoldsEngine:
    """What every entry point shows of its engine: each option as a
    read-only attribute, `alpha` as the alpha the next batch is drawn with,
    and `mixing_state`, what a `keras_mixup.MixupSchedule` changes."""

    def hold_engine(
        self, owner, accepted, named, kwargs, *, fixed=None, mixes=True
    ):
        """Builds `self.engine` from the options the entry point takes by
        name (`named`, a dict) and those found in `kwargs`, which are
        removed from it, and initialises the next base class (a Keras layer
        or model) with the rest of `kwargs` (such as `name`)."""
        refused = sorted(
            k for k in kwargs if k in options.OPTIONS and k not in accepted
        )
        options.check_names(owner, refused, accepted)
        given = {k: kwargs.pop(k) for k in accepted if k in kwargs}
        mixing = MixingEngine(
            owner=owner,
            accepted=accepted,
            fixed=fixed,
            mixes=mixes,
            **named,
            **given,
        )
        if not isinstance(self, keras.layers.Layer):
            options.check_names(owner, kwargs, accepted)  # no base takes it
        super().__init__(**kwargs)
        self.engine = mixing
        if isinstance(self, keras.layers.Layer):
            self._track_mixing_state()

    def _track_mixing_state(self):
        """Tracks the seed generator (on JAX and PyTorch) and, on JAX, the
        switch and alpha variables, so that Keras threads them through
        its stateless step (they are then non-trainable weights of the
        layer; PyTorch steps read them live)."""
        if self.engine.seed_generator is not None:
            self._mixing_seed_generator = self.engine.seed_generator
        if backend.keras_backend() == "jax" and self.engine.mixes:
            self._mixing_variables = self.engine.state.variables

    def _seed_streams(self):
        """The engine's seed streams, as `state.save_seed_state` takes
        them (none for an object without an engine)."""
        mixing = getattr(self, "engine", None)
        if mixing is None:
            return {}
        return {
            "seed_source": mixing._seed_source,
            "seed_generator": mixing.seed_generator,
        }

    def save_own_variables(self, store):
        """Saves where the seed streams are, so that a loaded model resumes
        with the same draws (see `keras_mixup.state.save_seed_state`);
        the switch and alpha are not saved (a `MixupSchedule` sets them),
        and each backend's stream under its own key, so the file loads on
        every backend."""
        save_seed_state(store, **self._seed_streams())

    def load_own_variables(self, store):
        """Loads the seed streams `save_own_variables` saved, when the file
        holds this backend's kind of stream."""
        load_seed_state(store, **self._seed_streams())

    def _described(self):
        """What the repr shows: `name=...` and every option."""
        return [f"name={self.name!r}", self.engine.settings.describe()]

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(self._described())})"

    @property
    def alpha(self):
        """The alpha the next batch is drawn with (a `MixupSchedule` may
        have changed it; `get_config` keeps the constructor's), or `None`
        where nothing mixes (the plain `MixupGAN`): a Python float, the
        shortest decimal the float32 variable holds (0.3, not
        0.30000001192092896)."""
        state = self.engine.state
        return None if state is None else state.values()[0]

    @property
    def mixing_state(self):
        """The switch and alpha a `keras_mixup.MixupSchedule` changes, or
        `None` where nothing mixes."""
        return self.engine.state


# Every option as a read-only attribute (the variants' too: they are
# registered when `keras_mixup.variants` is imported, before this runs).
for _name in options.OPTIONS:
    if _name != "alpha":
        setattr(HoldsEngine, _name, _option_property(_name))
del _name
