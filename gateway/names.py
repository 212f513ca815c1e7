"""Model names and versions, checked wherever they enter: URLs, the CLI, store lookups.

Both become path segments in the store (`<store>/<name>/<version>/`), so anything beyond a plain
token (`..`, `/`, an absolute path, NUL) must be refused before it reaches the file system.
"""

from __future__ import annotations

import re

from gateway.settings import MODEL_NAME

# A stored version (digits) or an alias / "latest" (a name-like token).
VERSION = re.compile(r"^(?:[0-9]{1,9}|[a-z][a-z0-9_]{0,62})$")
NAME_RULE = "model names are a lower-case letter, then lower-case letters, digits or '_' (at most 63)"
VERSION_RULE = "versions are digits (e.g. 3) or an alias such as 'latest' or 'champion'"


def name_problem(name: object) -> str | None:
    """Why `name` is not a model name, or None when it is one."""
    if isinstance(name, str) and MODEL_NAME.match(name):
        return None
    return f"model name {_show(name)} is not valid: {NAME_RULE}"


def version_problem(version: object) -> str | None:
    if isinstance(version, str) and VERSION.match(version):
        return None
    return f"model version {_show(version)} is not valid: {VERSION_RULE}"


def _show(value: object) -> str:
    # repr() escapes NUL and control characters, so the message itself stays printable.
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
