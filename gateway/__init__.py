"""One HTTP API in front of Python and R models."""

from gateway.register import register_model

__all__ = ["register_model"]
