"""Modules shipped with coremis. Each sub-package declares a ``MODULE`` manifest."""
