"""Which job kinds exist: those the enabled plug-ins (the core's too) declare."""

from __future__ import annotations

from functools import cache

from core.errors import ModuleConfigurationError
from core.jobs.context import Handler


@cache
def job_kinds() -> dict[str, tuple[str, Handler]]:
    from core.hooks import results_by_module

    kinds: dict[str, tuple[str, Handler]] = {}
    for module, declared in results_by_module("coremis_jobs"):
        for kind, handler in declared.items():
            if not kind.startswith(f"{module}."):
                raise ModuleConfigurationError(
                    module, f"declares job kind '{kind}' outside its namespace", f"name it '{module}.<job>'"
                )
            kinds[kind] = (module, handler)
    return kinds
