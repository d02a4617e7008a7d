"""HTTP adapters used by the entry points in ``app.py``: pages, JSON API, static files."""
