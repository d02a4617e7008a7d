"""Cryptographic building blocks (password hashing, token hashing, signed values) and bounded
parsing of untrusted JSON."""
