"""SSM in the emulator: ``PutParameter`` refuses to create a parameter without ``Type``, as AWS does.

What it changes in moto, and why: moto 5.2.5 requires ``Type`` for a new parameter only without
``Overwrite``, and otherwise creates it with no type. The reconciler sends ``Type`` only when it creates a
parameter, so a parameter deleted between its read and its write must be refused here as AWS refuses it
(``ValidationException``: "A parameter type is required when you create a parameter.").

The rest of SSM is moto's, quirks included, and the tests design around them (tests/README.md):
``Version`` increments on every overwrite even with the same value, ``GetParameters`` answers in any
order, and a SecureString read without decryption returns a fake ``kms:...`` value.
"""

from __future__ import annotations

from typing import Any


def patch() -> None:
    """Install the PutParameter check into moto's SSM backend (idempotent: wraps moto's own method once)."""
    from moto.ssm.exceptions import ValidationException
    from moto.ssm.models import SimpleSystemManagerBackend

    original = getattr(
        SimpleSystemManagerBackend.put_parameter, "__wrapped__", SimpleSystemManagerBackend.put_parameter
    )

    def put_parameter(
        self: Any, name: str, description: str, value: str, parameter_type: str, *args: Any, **kwargs: Any
    ) -> Any:
        if not parameter_type and not self._parameters.get(name):
            raise ValidationException("A parameter type is required when you create a parameter.")
        return original(self, name, description, value, parameter_type, *args, **kwargs)

    put_parameter.__wrapped__ = original  # what a second patch() unwraps
    SimpleSystemManagerBackend.put_parameter = put_parameter
