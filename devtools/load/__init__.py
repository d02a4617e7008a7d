"""``make load``: the payday peak ("quincena") against the local stack, with Locust.

Hundreds of simulated members, each created for the run through the core-file import, sign in,
list what they owe and pay through the PSE sandbox while webhooks arrive duplicated and out of
order and the poller runs; then the money invariants are checked against DynamoDB (moto).
``python -m devtools.load --help``; README "Load test (payday peak)".
"""
