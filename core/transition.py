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

PLAIN_CODES: frozenset[str] = frozenset({"payroll"})
OLD_PERMISSION_STYLE: frozenset[str] = frozenset({"payroll"})
NONE_ACTOR: frozenset[str] = frozenset({"payroll"})
MUTATION_FILES_USING_MECHANISMS: frozenset[str] = frozenset({
    "modules/payroll/schema.py",
})
TEST_FILES_IMPORTING_TEST_FILES: frozenset[str] = frozenset({
    "tests/test_faults.py",  # Provider from modules/payroll/tests/provider.py
    "bench/stages/payroll.py",  # Provider from modules/payroll/tests/provider.py
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


def calling_module(through: tuple[str, ...] = ()) -> str | None:
    """The name of the first module outside ``core`` on the call stack (``"payroll"`` for
    ``modules.payroll.services``), or ``None`` when the caller is the core or a core test.
    Frames of the modules ``through`` are passed over too (a converted module's helper that
    hands on what its caller gave)."""
    skipped = ("core", *(f"modules.{m}" for m in through))
    frame = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not any(name == s or name.startswith(f"{s}.") for s in skipped):
            parts = name.split(".")
            return parts[1] if len(parts) > 1 and parts[0] == "modules" else None
        frame = frame.f_back
    return None


def none_actor_tolerated(through: tuple[str, ...] = ()) -> bool:
    """Whether a ``None`` actor reached the core (through the helpers of the modules
    ``through``) from a module that is still allowed to mean "the system" by it."""
    return calling_module(through) in NONE_ACTOR
