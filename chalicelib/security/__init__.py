"""Cryptographic building blocks: password hashing, token hashing, signed values."""
