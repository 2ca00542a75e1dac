"""The options of one entry point, checked once, and the variant they
choose: what a `keras_mixup.engine.MixingEngine` is configured with, saved
and printed from."""

from keras_mixup import options, variants

__all__ = ["Settings"]


def _read(values, accepted, given, fixed):
    """Every option's value: the given ones checked, the rest defaults,
    then those the entry point fixes."""
    checked = {}
    for name, option in options.OPTIONS.items():
        value = values.get(name, option.default)
        checked[name] = option.check(value) if name in given else value
    checked.update(fixed)
    return checked


class Settings:
    """The checked options of an entry point and the variant they choose.

    Args:
        owner: the entry point's name, for error messages.
        accepted: the names of the options it takes, in the order they are
            saved and printed (`None`: every option).
        fixed: options it sets itself (such as the variant of a map
            function named after one).
        values: the options given.

    Raises:
        ValueError: for an option the entry point does not take, an
            invalid value, an option the chosen variants or pairing do not
            use, `label_smoothing` with `mix_labels=False`, or a variant
            without an inputs-only form with `mix_labels=False`.
    """

    def __init__(self, owner, accepted, fixed, values):
        accepted = tuple(options.OPTIONS if accepted is None else accepted)
        options.check_names(owner, values, accepted)
        self.owner = owner
        self.accepted = accepted
        self.fixed = dict(fixed or {})
        self.options = _read(values, accepted, set(values), self.fixed)
        self.variant = variants.resolve(self.options)
        self.resolved = variants.Resolved(
            self.variant, variants.names(self.options), self.options
        )
        options.check_used(owner, values, self.resolved)
        self._check_labels_use()

    def _check_labels_use(self):
        if self.options["mix_labels"]:
            return
        if self.options["label_smoothing"]:
            raise ValueError(
                "`label_smoothing` has no effect with `mix_labels=False` "
                "(labels are returned as given); received label_smoothing="
                f"{self.options['label_smoothing']!r}. Smooth the labels in "
                "the loss instead."
            )
        self.check_inputs_only()

    def check_inputs_only(self):
        """Refuses the inputs-only form where the variant has none.

        Raises:
            ValueError: naming the variant and why it needs labels.
        """
        if not self.variant.inputs_only_form:
            needing = sorted(
                name
                for name in self.variant.names
                if not variants.REGISTRY[name].inputs_only_form
            )
            raise ValueError(
                f"{self.owner} cannot mix without labels: {needing} need(s) "
                "the labels (`mix_labels=True`, or the dict form with "
                "labels). " + self.variant.needs_labels_reason
            )

    @property
    def saved_names(self):
        """The accepted options that take effect: what configs hold and
        `describe` prints."""
        unused = set(options.unused(self.accepted, self.resolved))
        return [name for name in self.accepted if name not in unused]

    def get_config(self):
        """The options that take effect, as a config."""
        return {
            name: options.OPTIONS[name].to_config(self.options[name])
            for name in self.saved_names
        }

    @staticmethod
    def options_from_config(config, *, fixed=None, accepted=None):
        """Decodes the options of a config (other keys pass unchanged).

        Options that take no effect with the config's variant and pairing,
        or that the entry point no longer takes (`accepted`: the names it
        takes, `None` for all), saved before they were refused, are
        dropped.
        """
        table = options.OPTIONS
        if accepted is not None:
            config = {
                k: v
                for k, v in config.items()
                if k not in table or k in accepted
            }
        decoded = {
            key: table[key].from_config(value) if key in table else value
            for key, value in config.items()
        }
        values = {k: v for k, v in decoded.items() if k in table}
        values = _read(values, table, set(values), dict(fixed or {}))
        resolved = variants.Resolved(
            variants.resolve(values), variants.names(values), values
        )
        dropped = set(options.unused(list(values), resolved))
        return {k: v for k, v in decoded.items() if k not in dropped}

    def describe(self):
        """`"alpha=0.2, num_classes=10, ..."`: the options that take
        effect."""
        return ", ".join(
            f"{name}={self.options[name]!r}" for name in self.saved_names
        )

    def check_targets(self, targets):
        """Refuses targets the variant does not take.

        Raises:
            ValueError: naming the variant and the target.
        """
        for target in targets:
            if target not in self.variant.takes:
                takers = sorted(
                    name
                    for name, cls in variants.REGISTRY.items()
                    if target in cls.takes
                )
                raise ValueError(
                    f"{self.owner} with variant="
                    f"{self.options['variant']!r} cannot mix "
                    f"`{target}`: not every variant chosen has a rule for "
                    f"them. The variants that do: {takers}."
                )
