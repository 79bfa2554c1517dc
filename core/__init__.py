"""coremis core: the thin platform every module plugs into."""

__version__ = "0.1.0"
