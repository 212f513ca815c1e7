"""The `gateway` command: run the stack, register models, render configs.

User errors (a bad config, a stack that will not start) print one line to stderr and exit
non-zero: 2 for config errors, 1 for stack errors. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway.errors import ConfigError
from gateway.runtime.stack import StackError
from gateway.settings import Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except ConfigError as exc:
        print(f"gateway: config error: {exc}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("gateway: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="One HTTP API in front of Python and R models.")
    parser.add_argument("--config", help="the gateway config (default: $GATEWAY_CONFIG, else ./gateway.toml)")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the stack (NGINX, Gunicorn, R pools) under supervisord")
    up.add_argument("--port", type=int, help="public port (overrides server.port)")
    up.add_argument("--foreground", action="store_true", help="run supervisord in the foreground (containers)")
    up.set_defaults(handler=_up)

    commands.add_parser("down", help="stop the stack and wait for every process").set_defaults(handler=_down)
    commands.add_parser("status", help="programs and readiness").set_defaults(handler=_status)
    commands.add_parser("reload", help="apply config changes without a restart").set_defaults(handler=_reload)

    render = commands.add_parser("render", help="write the rendered configs into a directory")
    render.add_argument("--out", required=True, type=Path, help="output directory")
    render.set_defaults(handler=_render)

    register = commands.add_parser("register", help="add a model file or Plumber script to the store")
    register.add_argument("name")
    register.add_argument("path", type=Path, help=".skops, .joblib, .rds or a plumber .R")
    register.add_argument("--sample", type=Path, help="CSV slice of the training data (fixes the schema)")
    register.add_argument("--description", default="")
    register.set_defaults(handler=_register)

    commands.add_parser("build-demo", help="build the demo models the store lacks").set_defaults(handler=_build_demo)
    # `--config` is accepted after the subcommand too: `gateway up --config x.toml`.
    for sub in commands.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get("GATEWAY_CONFIG")
    if path is None:
        if not Path("gateway.toml").is_file():
            raise ConfigError("no config: pass --config PATH, set GATEWAY_CONFIG, or run where gateway.toml is")
        path = "gateway.toml"
    return load_settings(path)


def _up(args: argparse.Namespace) -> int:
    from gateway.runtime.stack import public_url, up

    settings = _settings(args)
    if args.foreground:
        print(f"gateway: starting in the foreground from {settings.run_dir}", flush=True)
    plan = up(settings, port=args.port, foreground=args.foreground)
    print(f"gateway is up at {public_url(plan)}")
    for model in settings.models.values():
        pool = plan.pools.get(model.name)
        extra = f", {len(pool.workers)} R workers" if pool else ""
        print(f"  {model.name}: {model.backend}{extra}  {public_url(plan)}/models/{model.name}/predict")
    print("stop with: gateway down")
    return 0


def _down(args: argparse.Namespace) -> int:
    from gateway.runtime.stack import down

    settings = _settings(args)
    down(settings.run_dir)
    print(f"gateway: stopped (run dir {settings.run_dir})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from gateway.runtime.stack import status

    print(status(_settings(args).run_dir))
    return 0


def _reload(args: argparse.Namespace) -> int:
    from gateway.runtime.stack import reload

    reload(_settings(args))
    print("gateway: reloaded")
    return 0


def _render(args: argparse.Namespace) -> int:
    from gateway.runtime.plan import make_plan
    from gateway.runtime.render import render_to

    settings = _settings(args)
    for name, path in render_to(settings, make_plan(settings), args.out).items():
        print(f"{name}: {path}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from gateway.register import register_artefact

    settings = _settings(args)
    version = register_artefact(settings.store_path, args.name, args.path, args.sample, args.description)
    print(f"registered {args.name} version {version} in {settings.store_path}")
    return 0


def _build_demo(args: argparse.Namespace) -> int:
    from gateway.demo import build_demo_store

    built = build_demo_store(_settings(args))
    print(f"built demo models: {', '.join(built)}" if built else "demo models already built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
