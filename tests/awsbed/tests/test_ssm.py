"""SSM in the emulator (awsbed.emulator.ssm): PutParameter refuses to create a parameter without a Type."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from helpers import Bed


def test_put_parameter_creating_needs_a_type(bed: Bed) -> None:
    """PutParameter without Type creates nothing, also with Overwrite (as AWS refuses it)."""
    with pytest.raises(ClientError) as refused:
        bed.ssm.put_parameter(Name="/app/gone/redis", Value="h:1", Overwrite=True)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "type is required" in refused.value.response["Error"]["Message"]
    assert bed.ssm.describe_parameters()["Parameters"] == []
    bed.ssm.put_parameter(Name="/app/gone/redis", Value="h:1", Type="String")
    bed.ssm.put_parameter(Name="/app/gone/redis", Value="h:2", Overwrite=True)
    assert bed.ssm.get_parameter(Name="/app/gone/redis")["Parameter"]["Value"] == "h:2"
