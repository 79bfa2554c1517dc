"""The payroll module's test plug-in (registered by the core's, see ``core/testing``): the
simulated providers of ``simulators.py`` handed to tests as fixtures.

Tests reach them through ``mobile_money_simulator`` (the class, ``serve``, ``running`` and the
fault names) and ``g2p_simulator``, never by importing a module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from modules.payroll.simulators import FAULTS, Provider, Receiver, running, running_receiver, serve


@dataclass(frozen=True)
class MobileMoneySimulator:
    """What the ``mobile_money_simulator`` fixture hands a test: ``provider`` (the class, to
    construct or subclass), ``serve(provider, port=0)`` (a started server), ``running(provider)``
    (a context yielding its base URL) and ``faults`` (the names a test may inject)."""

    provider: type[Provider]
    serve: Any
    running: Any
    faults: tuple[str, ...]


@pytest.fixture
def mobile_money_simulator() -> MobileMoneySimulator:
    return MobileMoneySimulator(provider=Provider, serve=serve, running=running, faults=FAULTS)


@dataclass(frozen=True)
class G2PSimulator:
    """What the ``g2p_simulator`` fixture hands a test: ``receiver`` (the class) and
    ``running(receiver)`` (a context yielding its base URL)."""

    receiver: type[Receiver]
    running: Any


@pytest.fixture
def g2p_simulator() -> G2PSimulator:
    return G2PSimulator(receiver=Receiver, running=running_receiver)
