"""The backends this gateway serves, one BackendKind each (see gateway.backends.kinds).

Adding a backend: write its module (a Backend subclass and its KIND), and add it here.
"""

from __future__ import annotations

from gateway.backends import onnx, plumber, python, rpy2
from gateway.backends.kinds import BackendKind, KindRegistry

KINDS = KindRegistry([python.KIND, plumber.KIND, rpy2.KIND, onnx.KIND])

__all__ = ["KINDS", "BackendKind"]
