"""One HTTP API in front of Python and R models.

Public names load on first use (PEP 562): every process imports this package, including the
supervisord event listeners, which must not pay for pandas and scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.errors import ModelProblem
    from gateway.register import register_model

__all__ = ["ModelProblem", "register_model"]
_LAZY = {"ModelProblem": "gateway.errors", "register_model": "gateway.register"}  # public name → module that defines it


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'gateway' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
