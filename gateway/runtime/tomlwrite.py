"""Write settings back as TOML: the stack's processes read a resolved copy, not the user's file.

The copy has every path made absolute and every `GATEWAY_*` override already applied, so the
app in Gunicorn sees exactly the settings the configs were rendered from, whatever its cwd.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from gateway.settings import Settings


def settings_to_toml(settings: Settings) -> str:
    """The settings as a TOML document that `load_settings` reads back to equal settings."""
    server = dataclasses.asdict(settings.server)
    server["run_dir"] = str(settings.run_dir)
    # The copy lives in run_dir: relative paths would break.
    for key in ("api_keys_file", "cluster_secret_file", "cluster_ca_file", "cluster_cert_file", "cluster_key_file"):
        if server[key]:
            server[key] = str(settings.resolve(server[key]))
    models: dict[str, Any] = {}
    for name, model in settings.models.items():
        table = dataclasses.asdict(model)
        del table["name"]
        if model.script is not None:
            table["script"] = str(settings.resolve(model.script))
        models[name] = table
    raw = {"server": server, "store": {"path": str(settings.store_path)}, "models": models,
           "kubernetes": dataclasses.asdict(settings.kubernetes)}
    header = "# Resolved copy of the gateway settings, written by `gateway up`; do not edit.\n"
    if settings.config_path is not None:
        header += f"# Source: {settings.config_path}\n"
    return header + "\n" + dump_toml(raw)


def dump_toml(raw: dict[str, Any]) -> str:
    """Nested dicts of str/int/float/bool as TOML tables; None values are left out."""
    lines: list[str] = []
    _table(raw, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _table(values: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in values.items() if not isinstance(v, dict) and v is not None}
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    if path and (scalars or not tables):
        lines.append("")
        lines.append(f"[{'.'.join(_key(p) for p in path)}]")
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in scalars.items())
    for key, table in tables.items():
        _table(table, [*path, key], lines)


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _string(text: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; DEL must be escaped in TOML too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
