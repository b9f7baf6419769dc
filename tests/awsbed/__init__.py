"""awsbed: the local AWS test bed of this repository, in one package.

Everything the Python around the Rust functions needs to stand up and drive the local AWS bed:
the emulator itself, starting and stopping it, its control API, seeding it, and the small pieces the
drill and the benchmarks share. The scripts (demo/drill.py, bench/*.py, tests/local_loop.py) are short
`main`s over this package; none keeps a copy of a helper that lives here.

Layout
------
- `awsbed.emulator`: the emulator, moto server behind a WSGI layer (`python -m awsbed.emulator
  --port 5005`); one module per service it changes (app, elasticache, route53, ssm, faults).
- `awsbed.process`: child processes in their own process groups; start and stop an emulator process
  on a free loopback port (`start_emulator`); free ports; waiting for a port to listen.
- `awsbed.control`: a client of the emulator's control API (`/_failover/...`): failover, roles,
  status, endpoints, faults, the request log, reset.
- `awsbed.aws`: a hermetic environment (no proxies, no profile, dummy credentials) and boto3 clients
  for the emulator.
- `awsbed.seed`: replication groups, a group's primary, the blue/green weighted pair, the hosted zone;
  `python -m awsbed.seed` is `make seed-emulator`.
- `awsbed.redis`: real redis-server processes on loopback ports, a primary and its replica (the drill).
- `awsbed.runtime_api`: a Lambda Runtime API for one function process (the benchmarks).
- `awsbed.stamps`: what a benchmark figure is stamped with (commit, machine, date), percentiles, and
  rewriting a marked section of BENCHMARKS.md.

What flows: a script calls `process.start_emulator()` for a URL, `aws.clients(url)` and
`control.Control(url)` to talk to it, and `seed` to put groups, parameters and records in it. The test
suite of it all is `tests/awsbed/tests/` (pytest, `make test-emulator`).

Scripts find this package through `PYTHONPATH=tests` (the Makefile's `PY`); `tests/local_loop.py` finds
it beside itself. Importing the package imports nothing else: the emulator's process imports only what
it serves.
"""

from pathlib import Path

REPO: Path = Path(__file__).resolve().parents[2]
"""The repository root."""

TESTS: Path = REPO / "tests"
"""The folder that holds this package (what `PYTHONPATH` must name)."""
