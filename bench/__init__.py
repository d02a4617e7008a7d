"""`make bench`: the non-functional budgets of SPEC §7, measured and printed as one table.

Run ``python -m bench`` (or ``make bench``). It prints ``measure | figure | budget | verdict`` to
stdout and writes the same text to ``test-artifacts/bench.txt``. A budget exceeded is reported as
``OVER``, not as a failure: the exit status is 1 only when the harness itself could not measure.

Layout:

* :mod:`bench.env` - the tests' environment (loads ``tests/conftest.py``), moto with the tables,
  a still clock, fresh IPs and documents, the app's test client. Import it first.
* :mod:`bench.trips` - counts and times DynamoDB round trips (moto's ``before-send`` stubber and
  botocore's ``_make_api_call``), session-validation reads apart.
* :mod:`bench.report` - ``Row`` and the table.
* one module per measure, each with ``run() -> (rows, notes)``: :mod:`bench.coldstart`,
  :mod:`bench.roundtrips`, :mod:`bench.login_timing`, :mod:`bench.overhead`.

To add a measure: write a module with ``run()`` returning ``(list[Row], list[str])`` and list it in
``MEASURES`` in :mod:`bench.__main__`. To add a DynamoDB action: append an ``Action`` to
``bench.roundtrips.ACTIONS`` (budget, routes/modules it needs; "n/a" until they exist).
"""
