"""API keys: a hashed keys file, the `Authorization` check, and the one before_request hook.

A key looks like `gw.<id>.<secret>`: `id` is 8 hex characters, not secret, stored in clear so a
request costs one hash derivation (the entry with that id) instead of one per stored key; trying
every entry would make the cost of a wrong key grow with the number of keys. `secret` is
`secrets.token_urlsafe(32)` (256 random bits). The file stores a salted PBKDF2-HMAC-SHA256 of the
whole key, never the key. The iteration count is low on purpose and stored per entry: a 256-bit
random secret cannot be guessed, so stretching would only add latency to every request.

The keys file is JSON, written atomically (temp file + rename), and re-read by the server when
its inode, size or mtime change, so `gateway keys add` takes effect without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from flask import Flask, current_app, g, request

from gateway.errors import ConfigError, Forbidden, Unauthorized, Unavailable
from gateway.private_files import private_dir, write_private
from gateway.protocol import model_in_url
from gateway.settings import Settings

log = logging.getLogger(__name__)
Scope = Literal["predict", "admin"]
SCOPES: tuple[Scope, ...] = ("predict", "admin")
ITERATIONS = 1000
_DUMMY_SALT = bytes(16)
_KEY = re.compile(r"^gw\.([0-9a-f]{8})\.([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SCHEMES = ("bearer", "key")
ADMIN_PREFIX = "/admin/"


@dataclass(frozen=True)
class KeyEntry:
    """One stored key: who it is, what it may do, and how to check it."""

    id: str
    name: str
    scope: Scope
    models: tuple[str, ...]  # empty: every model
    salt: str  # hex
    hash: str  # hex PBKDF2-HMAC-SHA256 of the whole key
    iterations: int = ITERATIONS

    def matches(self, key: str) -> bool:
        """Constant-time comparison of the derived hash (never of the key itself)."""
        derived = _derive(key, bytes.fromhex(self.salt), self.iterations)
        return hmac.compare_digest(derived, bytes.fromhex(self.hash))

    def allows(self, scope: Scope, model: str | None) -> bool:
        if scope == "admin" and self.scope != "admin":
            return False
        return model is None or not self.models or model in self.models


def _derive(key: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)


def new_entry(name: str, scope: str, models: tuple[str, ...] = ()) -> tuple[str, KeyEntry]:
    """A fresh random key and its stored entry; the key itself is returned once, never stored."""
    if not _NAME.match(name):
        raise ConfigError(f"key name {name!r}: use letters, digits, '_', '.', '-' (at most 64)")
    if scope not in SCOPES:
        raise ConfigError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    key_id = secrets.token_hex(4)
    key = f"gw.{key_id}.{secrets.token_urlsafe(32)}"
    salt = secrets.token_bytes(16)
    entry = KeyEntry(key_id, name, scope, tuple(models), salt.hex(), _derive(key, salt, ITERATIONS).hex())
    return key, entry


def read_keys(path: Path) -> list[KeyEntry]:
    """Entries of a keys file ([] when it does not exist). ConfigError when it is malformed."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"keys file {path}: unreadable ({exc})") from None
    try:
        entries = [
            KeyEntry(**{**item, "models": tuple(item.get("models", ()))}) for item in document["keys"]
        ]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"keys file {path}: malformed entry ({exc}); recreate it with `gateway keys add`") from None
    for entry in entries:
        if entry.scope not in SCOPES or not re.fullmatch(r"[0-9a-f]{8}", entry.id):
            raise ConfigError(f"keys file {path}: entry {entry.name!r} has a bad scope or id")
    return entries


def write_keys(path: Path, entries: list[KeyEntry]) -> None:
    """Atomically replace the keys file, 0600 from creation: a reader sees the old or the new
    file whole. A missing directory is created 0700 (an existing one is left as it is)."""
    if not path.parent.exists():
        private_dir(path.parent)
    document = {"version": 1, "keys": [{**asdict(e), "models": list(e.models)} for e in entries]}
    write_private(path, json.dumps(document, indent=2), keep_owner=True)


class KeyRing:
    """The keys of one file, re-read when the file changes (checked by one stat per request)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_id: dict[str, KeyEntry] = {}
        self._error: str | None = None
        self.refresh()
        if self._error is not None:
            raise ConfigError(self._error)

    def refresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                self._by_id = {e.id: e for e in read_keys(self.path)}
                self._error = None
            except ConfigError as exc:
                # Fail closed: a broken file must not leave a removed key working.
                log.error("%s", exc)
                self._by_id, self._error = {}, str(exc)
            self._stamp = stamp

    def lookup(self, key: str) -> KeyEntry | None:
        """The entry this key belongs to, or None. Raises Unavailable if the file is broken."""
        self.refresh()
        if self._error is not None:
            raise Unavailable("the API keys file is unreadable; see the gateway log")
        match = _KEY.match(key)
        entry = self._by_id.get(match.group(1)) if match is not None else None
        if entry is None:
            # The same work as a real check, so the answer's timing does not tell ids apart.
            _derive(key, _DUMMY_SALT, ITERATIONS)
            return None
        return entry if entry.matches(key) else None


def presented_key(header: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` or `Authorization: Key <key>`."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() not in _SCHEMES or not value.strip():
        return None
    return value.strip()


def required_scope(path: str) -> Scope:
    return "admin" if path.startswith(ADMIN_PREFIX) or path == ADMIN_PREFIX.rstrip("/") else "predict"


def keys_path(settings: Settings) -> Path | None:
    """The configured keys file, resolved; None when access control is off."""
    return settings.resolve(settings.server.api_keys_file) if settings.server.api_keys_file else None


def install(app: Flask, keys_file: Path | None, open_paths: tuple[str, ...]) -> None:
    """Register the one access-control hook (nothing when keys_file is None: auth off)."""
    if keys_file is None:
        return
    if not keys_file.is_file():
        raise ConfigError(
            f"server.api_keys_file: {keys_file} does not exist; create it with `gateway keys add NAME --scope admin`"
        )
    app.extensions["gateway.keys"] = KeyRing(keys_file)
    app.extensions["gateway.open_paths"] = frozenset(open_paths)
    app.before_request(_check_access)


def _check_access() -> None:
    """Raises Unauthorized or Forbidden, which the error pipeline writes in the called protocol's
    envelope (gateway/error_pipeline.py)."""
    if request.path in current_app.extensions["gateway.open_paths"]:
        return
    ring: KeyRing = current_app.extensions["gateway.keys"]
    key = presented_key(request.headers.get("Authorization"))
    entry = ring.lookup(key) if key is not None else None
    if entry is None:
        raise Unauthorized("this route needs an API key: send 'Authorization: Bearer <key>' (create one with "
                           "`gateway keys add NAME --scope predict`)" if key is None else "the API key is not valid")
    scope = required_scope(request.path)
    model = model_in_url()
    if not entry.allows(scope, model):
        why = (f"key '{entry.name}' has scope '{entry.scope}'; this route needs '{scope}'"
               if scope == "admin" and entry.scope != "admin"
               else f"key '{entry.name}' may not use model '{model}'; it is limited to {', '.join(entry.models)}")
        raise Forbidden(why, model=model)
    g.api_key_id = entry.id  # who owns what this request creates (bulk jobs)
