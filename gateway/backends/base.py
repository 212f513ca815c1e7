"""The contract every language implements: load once, predict a validated Table, report health."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from gateway.codecs.table import Table
from gateway.meta import ModelMeta


@dataclass(frozen=True)
class Health:
    ready: bool
    detail: str = ""
    live: int | None = None  # pools only: workers accepting connections
    total: int | None = None


class Backend(ABC):
    """One served model version. Implementations raise GatewayErrors, never foreign types."""

    kind: str = "abstract"  # the `backend` name in the config and in /models

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta

    @abstractmethod
    def load(self) -> None:
        """Make the model ready; raise ConfigError with a fix when it cannot be."""

    @abstractmethod
    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        """One JSON-ready prediction per row of an already validated table."""

    def health(self) -> Health:
        return Health(ready=True)

    def batching(self) -> tuple[int, int]:
        """(default max_size, call slots) for the micro-batcher; (1, 1) is off.

        Off unless a backend knows its predict is row-wise and vectorised; `slots` is how many
        calls it serves at once (an R pool's workers), beyond which requests queue and coalesce.
        """
        return 1, 1

    def unload(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what load() took; the default holds nothing."""
