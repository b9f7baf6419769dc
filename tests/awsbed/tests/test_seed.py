"""awsbed.seed: the library the drill and the benchmarks seed with, and `python -m awsbed.seed`
(`make seed-emulator`)."""

from __future__ import annotations

import subprocess
import sys

from awsbed import seed
from awsbed.process import bed_env
from helpers import Bed

WILD = "\\052.shop.example.com."


def run_seed(bed: Bed, *args: str, record_env: str | None = None) -> str:
    """`python -m awsbed.seed --endpoint-url <the bed> ARGS` with RECORD_NAME unset or `record_env`; its stdout."""
    env = bed_env()
    env.pop("RECORD_NAME", None)
    if record_env:
        env["RECORD_NAME"] = record_env
    done = subprocess.run(
        [sys.executable, "-m", "awsbed.seed", "--endpoint-url", bed.url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"awsbed.seed {args} exited {done.returncode}: {done.stdout}{done.stderr}"
    return done.stdout


def pair_weights(bed: Bed) -> dict[tuple[str, str], int]:
    """{(name, set identifier): weight} of every weighted record in example.com."""
    zone_id = bed.r53.list_hosted_zones_by_name(DNSName="example.com.")["HostedZones"][0]["Id"]
    records = bed.r53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"], r["SetIdentifier"]): r["Weight"] for r in records if "SetIdentifier" in r}


def test_seed_pair_under_a_wildcard_name(bed: Bed) -> None:
    """--record (or $RECORD_NAME) seeds and sets the weighted pair under any name, '*' included."""
    out = run_seed(bed, "--record", "*.shop.example.com", "--weights", "75/25")
    assert f"{WILD} A  blue 75 / green 25" in out
    assert pair_weights(bed) == {(WILD, "blue"): 75, (WILD, "green"): 25}
    run_seed(bed)  # the default record (events/local.env's RECORD_NAME): its pair is created next to the other
    app = "app.example.com."
    assert pair_weights(bed) == {(WILD, "blue"): 75, (WILD, "green"): 25, (app, "blue"): 100, (app, "green"): 0}
    out = run_seed(bed, "--weights", "10/90", record_env="*.shop.example.com")
    assert f"{WILD} A  blue 10 / green 90" in out
    assert pair_weights(bed)[(WILD, "green")] == 90
    assert pair_weights(bed)[(app, "green")] == 0


def test_seed_published_state_failover_and_show(bed: Bed) -> None:
    """--state published writes each group's primary; --failover moves it; --show prints the parameters."""
    out = run_seed(bed, "--state", "published", "--targets", "orders=/app/orders/redis", "--show", "/app/orders/redis")
    group = seed.describe_group(bed.ec, "orders")
    assert group is not None and seed.roles(group)["orders-001"] == "primary"
    primary = seed.primary_endpoint(group)
    assert f"published /app/orders/redis = {primary}" in out
    assert f"/app/orders/redis = {primary}  (version 1, String)" in out
    out = run_seed(bed, "--failover", "orders")
    assert "TestFailover orders node group 0001: new roles" in out
    group = seed.describe_group(bed.ec, "orders")
    assert group is not None and seed.roles(group)["orders-002"] == "primary"


def test_library_groups_primary_and_weighted_pair(bed: Bed) -> None:
    """What the drill and the benchmarks seed with: a group, its primary published, a weighted pair."""
    seed.create_group(bed.ec, "bench0000")
    value = seed.publish_primary(bed.ec, bed.ssm, "bench0000", "/bench/bench0000")
    group = seed.describe_group(bed.ec, "bench0000")
    assert group is not None and value == seed.primary_endpoint(group)
    assert seed.roles(group) == {"bench0000-001": "primary", "bench0000-002": "replica"}
    assert bed.ssm.get_parameter(Name="/bench/bench0000")["Parameter"]["Value"] == value
    assert seed.describe_group(bed.ec, "nope") is None
    zone_id = seed.weighted_pair(bed.r53)
    assert seed.pair_weights(bed.r53, zone_id, "app.example.com") == {"blue": 100, "green": 0}
    seed.set_weights(bed.r53, zone_id, "app.example.com.", {"blue": 75, "green": 25})
    assert seed.pair_weights(bed.r53, zone_id, "app.example.com.") == {"blue": 75, "green": 25}
