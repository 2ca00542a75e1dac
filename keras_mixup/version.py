"""The package version, read by `pyproject.toml`."""

__version__ = "0.1.0"
__all__ = ["__version__"]
