"""Local PSE sandbox: Wompi's HTTP API plus a simulated bank page, for development and tests.

Start it with ``python -m devtools.pse_sandbox`` or, in process, ``start_sandbox(port=0)``.
"""

from devtools.pse_sandbox.server import BANKS, PseSandbox, SandboxHandle, start_sandbox

__all__ = ["BANKS", "PseSandbox", "SandboxHandle", "start_sandbox"]
