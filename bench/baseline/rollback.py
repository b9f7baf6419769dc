"""The rollback's job in plain boto3, for the baseline: on an allowed alarm entering ALARM, read
the weighted pair and, unless green is already 0, move all weight to blue in one DELETE + CREATE
batch.

Same AWS calls as the Rust function on the already-rolled-back path: one ListResourceRecordSets.
"""

import copy
import os

import boto3
from botocore.config import Config


def init():
    config = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=2, read_timeout=4)
    return {
        "r53": boto3.client("route53", config=config),
        "zone": os.environ["HOSTED_ZONE_ID"],
        "name": os.environ["RECORD_NAME"].rstrip(".") + ".",
        "alarms": set(os.environ["ALARM_NAMES"].split(",")),
    }


def handle(state, event, _time_left):
    alarm = event.get("alarmData", {})
    if alarm.get("alarmName") not in state["alarms"] or alarm.get("state", {}).get("value") != "ALARM":
        return {"action": "ignored"}
    out = state["r53"].list_resource_record_sets(
        HostedZoneId=state["zone"], StartRecordName=state["name"], StartRecordType="A", MaxItems="10"
    )
    pair = {
        r["SetIdentifier"]: r
        for r in out["ResourceRecordSets"]
        if r["Name"] == state["name"] and r["Type"] == "A" and r.get("SetIdentifier") in ("blue", "green")
    }
    blue, green = pair["blue"], pair["green"]
    if green["Weight"] == 0 and blue["Weight"] > 0:
        return {"action": "already-rolled-back", "blue_weight": blue["Weight"], "green_weight": 0}
    changes = []
    for record, weight in ((blue, blue["Weight"] + green["Weight"] or 100), (green, 0)):
        new = copy.deepcopy(record)
        new["Weight"] = weight
        changes += [{"Action": "DELETE", "ResourceRecordSet": record}, {"Action": "CREATE", "ResourceRecordSet": new}]
    state["r53"].change_resource_record_sets(HostedZoneId=state["zone"], ChangeBatch={"Changes": changes})
    return {"action": "rolled-back", "blue_weight": changes[1]["ResourceRecordSet"]["Weight"], "green_weight": 0}
