"""The contract every language implements: load once, predict a validated Table, report health."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gateway.codecs.table import Table
from gateway.meta import ModelMeta

if TYPE_CHECKING:
    import urllib3


@dataclass(frozen=True)
class Health:
    ready: bool
    detail: str = ""
    live: int | None = None  # pools only: workers accepting connections
    total: int | None = None
    hosts: dict[str, bool] | None = None  # pools with remote hosts: address → answering
    # Pools that follow the load: supervisord's running/starting/stopped counts (from the scaler),
    # and whether the pool is ready on demand (min 0, no worker running: the first request starts one).
    states: dict[str, int] | None = None
    on_demand: bool = False


@dataclass(frozen=True)
class BatchDefaults:
    max_size: int  # rows per call; 1 is off
    max_wait_ms: float  # longest a queued request waits for a free call slot
    slots: int  # calls served at once (an R pool's workers); beyond it requests queue and coalesce


class Backend(ABC):
    """One served model version. Implementations raise GatewayErrors, never foreign types."""

    kind: str = "abstract"  # the `backend` name in the config and in /models

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta

    def check(self) -> object:
        """Check the artefact is the registered one and trusted, without loading or running it:
        cheap, so `gateway up` and `reload` check every version before a worker starts. Raises
        ConfigError naming the model, version and fix."""
        return None

    @abstractmethod
    def load(self) -> None:
        """Make the model ready; raise ConfigError with a fix when it cannot be."""

    @abstractmethod
    def predict(self, table: Table, params: dict[str, Any]) -> list[Any]:
        """One JSON-ready prediction per row of an already validated table."""

    def health(self) -> Health:
        return Health(ready=True)

    def batching(self) -> BatchDefaults:
        """The micro-batcher's defaults for this backend (the config may override size and wait).

        Off unless a backend knows its predict is row-wise and vectorised.
        """
        return BatchDefaults(max_size=1, max_wait_ms=0.0, slots=1)

    def unload(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release what load() took; the default holds nothing."""


@runtime_checkable
class Forwarder(Protocol):
    """A backend that passes a request to the user's own routes (`/plumber/<name>/<path>`);
    the core asks for this capability, never for a backend's class."""

    def forward(self, method: str, path: str, query: bytes, headers: list[tuple[str, str]],
                body: bytes) -> urllib3.BaseHTTPResponse: ...
