"""Sucursal Virtual: the code deployed to Lambda (entry points live in ``app.py``)."""
