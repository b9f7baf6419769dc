"""Talking AWS to the emulator only: a hermetic environment and boto3 clients for the emulator's URL.

    hermetic()                       # no proxies, no profile, dummy credentials, us-east-1
    aws = clients(emulator.url)      # aws.ec, aws.ssm, aws.r53: one attempt, short timeouts

``hermetic`` edits this process's environment, so the processes it starts (functions under cargo lambda
watch, the sample application) inherit it; ``dummy_settings`` is the same settings for an environment
built from nothing (a function process of the benchmarks). Nothing here can reach AWS: every client is
given the emulator's endpoint.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

REGION = "us-east-1"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def dummy_settings(url: str | None = None) -> dict[str, str]:
    """AWS settings that name no real account: dummy credentials, the region, no config files, no
    instance metadata; with `url`, every SDK call goes to it (``AWS_ENDPOINT_URL``)."""
    settings = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if url:
        settings["AWS_ENDPOINT_URL"] = url
    return settings


def hermetic() -> None:
    """Make this process's environment hermetic: no proxies (loopback never proxied), no AWS profile,
    session token or endpoint of the user's, dummy settings (``dummy_settings``). Idempotent."""
    for var in (*PROXY_VARIABLES, "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(var, None)
    os.environ.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost", **dummy_settings())


class Clients(NamedTuple):
    """boto3 clients for one emulator."""

    ec: Any
    """ElastiCache."""
    ssm: Any
    """SSM."""
    r53: Any
    """Route 53."""


def clients(
    url: str, *, attempts: int = 1, region: str = REGION, connect_timeout: float = 2, read_timeout: float = 10
) -> Clients:
    """ElastiCache, SSM and Route 53 clients for the emulator at `url` (after ``hermetic()``).

    One attempt by default: a test or a seed that fails should say so, not retry.
    """
    import boto3
    from botocore.config import Config

    hermetic()
    config = Config(
        retries={"total_max_attempts": attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    kwargs = dict(
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )
    return Clients(*(boto3.client(service, **kwargs) for service in ("elasticache", "ssm", "route53")))
