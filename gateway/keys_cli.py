"""`gateway keys add|list|remove`: manage the API keys file named by `server.api_keys_file`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gateway.auth import SCOPES, keys_path, new_entry, read_keys, write_keys
from gateway.errors import ConfigError
from gateway.settings import MODEL_NAME, Settings


def add_parser(commands: argparse._SubParsersAction, settings_of: Callable[[argparse.Namespace], Settings]) -> None:
    """Register `keys` on the `gateway` parser; settings_of reads the config the user named."""
    keys = commands.add_parser("keys", help="API keys: add (printed once), list, remove")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    add = actions.add_parser("add", help="create a key; it is printed once and only its hash is stored")
    add.add_argument("name", help="who or what uses the key, e.g. billing-service")
    add.add_argument("--scope", choices=SCOPES, required=True, help="predict, or admin (implies predict)")
    add.add_argument("--models", default="", help="comma-separated models the key may use (default: all)")
    actions.add_parser("list", help="names, ids, scopes and models (never keys)")
    remove = actions.add_parser("remove", help="delete a key by name; servers drop it at once")
    remove.add_argument("name")
    for sub in actions.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    keys.set_defaults(handler=lambda args: run(args, _keys_file(settings_of(args))))


def _keys_file(settings: Settings) -> Path:
    path = keys_path(settings)
    if path is None:
        raise ConfigError("server.api_keys_file is not set; add e.g. api_keys_file = \"keys.json\" under [server]")
    return path


def run(args: argparse.Namespace, path: Path) -> int:
    entries = read_keys(path)
    if args.keys_command == "add":
        if any(e.name == args.name for e in entries):
            raise ConfigError(f"a key named {args.name!r} exists; remove it first or pick another name")
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        for model in models:
            if not MODEL_NAME.match(model):
                raise ConfigError(f"--models: {model!r} is not a model name ([a-z][a-z0-9_]*)")
        key, entry = new_entry(args.name, args.scope, models)
        write_keys(path, [*entries, entry])
        print(f"created key {entry.name!r} (id {entry.id}, scope {entry.scope}) in {path}")
        print("the key is shown once; store it now:")
        print(key)
    elif args.keys_command == "list":
        if not entries:
            print(f"no keys in {path}")
        for e in entries:
            print(f"{e.name}\tid={e.id}\tscope={e.scope}\tmodels={','.join(e.models) or '*'}")
    else:
        kept = [e for e in entries if e.name != args.name]
        if len(kept) == len(entries):
            raise ConfigError(f"no key named {args.name!r} in {path}; see `gateway keys list`")
        write_keys(path, kept)
        print(f"removed key {args.name!r}")
    return 0

