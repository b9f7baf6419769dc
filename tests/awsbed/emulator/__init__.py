"""The local AWS emulator: moto server (5.2.5, pinned exactly) plus what the failover tests need.

The integration tests, the drill and the benchmarks run the Lambda functions offline against moto.
Plain moto is missing a few things those need, so this package wraps moto's own WSGI app in a middleware
and patches a few of its models. Everything else goes to moto unchanged.

Run it: ``python -m awsbed.emulator --port 5005`` (``make emulator``), with ``PYTHONPATH=tests``. It
prints ``FAILOVER_EMULATOR_READY http://127.0.0.1:PORT`` once ready (``__main__``).

Layout (each module says at its top what it changes in moto, and why):

- ``app``: the WSGI layer. The control API under ``/_failover/`` (unsigned JSON), the request log, fault
  matching, dispatch to the service modules; ``POST /moto-api/reset`` also clears faults and the log;
  the warm-up that loads moto's services before the READY line.
- ``elasticache``: ``TestFailover`` (moto: 500), ``ModifyReplicationGroup`` with ``PrimaryClusterId``
  (moto: ignored), and the control API's failover, roles, status and endpoints of a group.
- ``route53``: atomic, exact-match change batches; names spelled and sorted as Route 53 does
  (``\\052``); an accepted change answered ``PENDING``.
- ``ssm``: ``PutParameter`` without ``Type`` refused for a new parameter, also with ``Overwrite``.
- ``faults``: fault rules (error answers, delays) matched on service, operation, path, query and body.
- ``_protocol``: what they share on the wire (bodies, signing scope, error bodies per protocol).
- ``__main__``: the command line; loopback only; ``--parent-watch``.

Requests flow: ``app`` logs a request, takes a matching fault from ``faults``, then lets ``elasticache``
answer or prepare it, and hands the rest to moto, whose Route 53 and SSM models ``route53`` and ``ssm``
patched at start.
"""
