"""Use cases: plain values in, plain values out; the rules live in ``chalicelib.domain``."""
