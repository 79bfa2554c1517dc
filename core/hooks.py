"""What a module imports to implement hooks, and how core code calls them."""

from __future__ import annotations

from typing import Any

import pluggy

from core.loader import get_registry

hookimpl = pluggy.HookimplMarker("coremis")

__all__ = ["hook", "hookimpl", "results_by_module"]


def hook() -> Any:
    """The relay to every enabled module's implementations: ``hook().coremis_jobs()``."""
    return get_registry().hook


def results_by_module(hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """Call a hook and pair each non-None result with the name of the module that returned it."""
    pm = get_registry().plugin_manager
    caller = getattr(pm.hook, hook_name)
    pairs: list[tuple[str, Any]] = []
    # Call implementations one by one so every result can be attributed to its module.
    for impl in reversed(caller.get_hookimpls()):
        result = impl.function(**{k: kwargs[k] for k in impl.argnames if k in kwargs})
        if result is not None:
            pairs.append((impl.plugin_name, result))
    return pairs
