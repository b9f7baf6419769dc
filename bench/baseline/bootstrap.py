"""The boto3 baseline of `make bench-functions`: what a user would otherwise deploy.

A Lambda custom-runtime loop in plain Python (the same four Runtime API endpoints the Rust
functions use), running one of the two handlers of this folder:

    python bench/baseline/bootstrap.py reconciler|rollback

Like a Python Lambda function, it imports boto3 and builds its clients at init, then serves
invocations one at a time. Configuration comes from the same environment variables as the Rust
functions (REDIS_TARGETS; HOSTED_ZONE_ID, RECORD_NAME, ALARM_NAMES).
"""

import json
import os
import sys
import time
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


def post(path, body):
    req = urllib.request.Request(f"{API}/{path}", data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(req).read()


def main():
    which = sys.argv[1]
    if which == "reconciler":
        import reconciler as handler
    elif which == "rollback":
        import rollback as handler
    else:
        sys.exit(f"unknown handler {which!r}")
    state = handler.init()
    while True:
        with urllib.request.urlopen(f"{API}/invocation/next") as resp:
            request_id = resp.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline_ms = int(resp.headers.get("Lambda-Runtime-Deadline-Ms", "0"))
            event = json.loads(resp.read())
        try:
            result = handler.handle(state, event, deadline_ms / 1000.0 - time.time())
            post(f"invocation/{request_id}/response", result)
        except Exception as err:  # a Lambda runtime reports any handler error
            post(f"invocation/{request_id}/error", {"errorType": type(err).__name__, "errorMessage": str(err)})


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
