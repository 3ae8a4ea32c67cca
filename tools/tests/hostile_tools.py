"""Pure tools that misbehave on purpose, for the sandbox tests.

Importable without Django (the tool process imports it to run them). ``register_tools()``
adds them to the registry; importing the module does so too, which is how a daphne server
started for a test gets them (TOOLS_EXTRA_MODULES=tools.tests.hostile_tools).
"""

from __future__ import annotations

import os
import sys

from pydantic import BaseModel, ConfigDict

from tools.registry import register


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def spin(arguments: NoArgs, context: object) -> dict:
    """Loops forever, in pure Python."""
    count = 0
    while True:
        count += 1


def spin_in_c(arguments: NoArgs, context: object) -> dict:
    """One C call that holds the interpreter lock for seconds: the call that froze the web
    process before the calculator bounded it (issue #18)."""
    return {"result": round(1, -10**7)}


def hog(arguments: NoArgs, context: object) -> dict:
    """Allocates without bound."""
    blocks = []
    while True:
        blocks.append(bytearray(16 * 1024 * 1024))


def crash(arguments: NoArgs, context: object) -> dict:
    """Ends its process abruptly."""
    os._exit(3)


def probe(arguments: NoArgs, context: object) -> dict:
    """What the tool process sees of its parent."""
    return {"pid": os.getpid(), "django_loaded": "django" in sys.modules, "environment": sorted(os.environ)}


HOSTILE = {"spin": spin, "spin_in_c": spin_in_c, "hog": hog, "crash": crash, "probe": probe}


def register_tools(*, timeout_s: float = 1.5) -> None:
    for name, handler in HOSTILE.items():
        register(name=name, description=handler.__doc__ or name, args=NoArgs, timeout_s=timeout_s,
                 pure=True)(handler)


register_tools()
