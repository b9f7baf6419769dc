"""Fixtures of the emulator's test suite (``make test-emulator``): one emulator for the whole session.

``emulator`` starts ``python -m awsbed.emulator --parent-watch`` once (awsbed.process); ``bed`` resets
it (``POST /moto-api/reset``: every resource, fault and logged request gone) before the test that asks
for it, and hands over boto3 clients and the control API. Tests that start and stop emulators of their
own (test_lifecycle.py) or none at all (test_ci.py, test_local_loop.py) do not use them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from awsbed import aws
from awsbed.control import Control
from awsbed.process import EmulatorProcess, start_emulator
from helpers import Bed


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """The one emulator of the session; stopped (stdin closed) at the end."""
    with start_emulator() as running:
        yield running


@pytest.fixture(scope="session")
def session_bed(emulator: EmulatorProcess) -> Bed:
    """Clients for the session's emulator, built once."""
    clients = aws.clients(emulator.url)
    return Bed(emulator.url, clients.ec, clients.ssm, clients.r53, Control(emulator.url))


@pytest.fixture
def bed(session_bed: Bed) -> Bed:
    """The session's emulator, reset for this test."""
    session_bed.control.reset()
    return session_bed
