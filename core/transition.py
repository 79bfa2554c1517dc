"""What issue 11's conventions still tolerate while the modules are converted to them.

Everything here goes: the coordinator deletes this file once every set below is empty (the
convention tests in ``tests/test_conventions.py`` then lose their skips). A module engineer
who converts a module removes it from the sets it no longer needs; nothing else may use
these tolerances.

- ``PLAIN_CODES``: modules whose code may still raise plain-string error codes
  (``ServiceError("INVALID", ...)``) instead of members of their ``errors.py`` enum, and
  whose mutations may still return ``errors { code }`` as a ``String`` (no ``error_codes``).
- ``OLD_PERMISSION_STYLE``: modules whose permission codes are not yet
  ``<module>.<noun>.<verb>`` constants of their ``permissions.py``.
- ``NONE_ACTOR``: modules whose code may still pass ``user=None`` for "the system"; from
  them, ``None`` is still read as the system actor. From anywhere else it is refused.
- ``MUTATION_FILES_USING_MECHANISMS``: files defining mutations that still start jobs or ask
  for approval themselves instead of calling a ``check_*``/``do_*`` use case.
- ``TEST_FILES_IMPORTING_TEST_FILES``: test and bench files that still import another test
  file instead of using a ``testing.py`` plug-in's fixtures.
"""

from __future__ import annotations

import sys

PLAIN_CODES: frozenset[str] = frozenset({"location", "individual", "social_protection", "payroll"})
OLD_PERMISSION_STYLE: frozenset[str] = frozenset({"location", "individual", "social_protection", "payroll"})
NONE_ACTOR: frozenset[str] = frozenset({"location", "individual", "social_protection", "payroll"})
MUTATION_FILES_USING_MECHANISMS: frozenset[str] = frozenset({
    "modules/location/schema.py",
    "modules/individual/export_schema.py",
    "modules/individual/import_schema.py",
    "modules/social_protection/schema.py",
    "modules/payroll/schema.py",
})
TEST_FILES_IMPORTING_TEST_FILES: frozenset[str] = frozenset({
    "tests/test_faults.py",  # Provider from modules/payroll/tests/provider.py
    "bench/stages/payroll.py",  # Provider from modules/payroll/tests/provider.py
    "modules/social_protection/tests/test_approvals_and_duplicates.py",
    "modules/social_protection/tests/test_duplicate_fields.py",
    "modules/social_protection/tests/test_scope_of_actions.py",
    "modules/individual/tests/test_bulk_import.py",
    "modules/individual/tests/test_import_edges.py",
    "modules/payroll/tests/test_money_rules.py",
    "modules/payroll/tests/test_maker_checker.py",
    "modules/payroll/tests/test_scope_of_actions.py",
    "modules/payroll/tests/test_payroll_generation.py",
    "modules/payroll/tests/test_g2p_connect.py",
    "modules/payroll/tests/test_lists_and_scope.py",
    "modules/payroll/tests/test_provider_secrets.py",
    "modules/payroll/tests/test_recipient_identifiers.py",
    "modules/payroll/tests/test_mobile_money.py",
    "modules/payroll/tests/test_file_adaptor_and_sending.py",
    "modules/payroll/tests/test_filters_naming_people.py",
    "modules/payroll/tests/test_configuration.py",
    "modules/payroll/tests/test_g2p_signature.py",
})


def plain_error_code(code: str) -> str:
    """A plain-string error code, accepted as it is during the transition. The convention test
    refuses string literals as codes outside ``PLAIN_CODES``; when this file goes,
    ``core.errors.checked_code`` refuses them at run time too."""
    return code


def calling_module() -> str | None:
    """The name of the first module outside ``core`` on the call stack (``"payroll"`` for
    ``modules.payroll.services``), or ``None`` when the caller is the core or a core test."""
    frame = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not (name == "core" or name.startswith("core.")):
            parts = name.split(".")
            return parts[1] if len(parts) > 1 and parts[0] == "modules" else None
        frame = frame.f_back
    return None


def none_actor_tolerated() -> bool:
    """Whether a ``None`` actor reached the core from a module that is still allowed to mean
    "the system" by it."""
    return calling_module() in NONE_ACTOR
