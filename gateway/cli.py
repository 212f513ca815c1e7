"""The `gateway` command: run the stack, register models, render configs.

User errors (a bad config, a stack that will not start) print one line to stderr and exit
non-zero: 2 for config errors, 1 for stack errors. Tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gateway import certs, keys_cli
from gateway.errors import ConfigError
from gateway.meta import InputSpec
from gateway.runtime.plan import Plan
from gateway.runtime.stack import StackError
from gateway.settings import Settings, load_settings
from gateway.store import ModelStore


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
    _add_run_modes(up)
    up.set_defaults(handler=_up)

    worker = commands.add_parser("worker", help="run only the R pools this host serves for a remote gateway")
    worker.add_argument("--listen", required=True, help="this host's private address, as the models' `hosts` name it")
    _add_run_modes(worker)
    worker.set_defaults(handler=_up, port=None)

    commands.add_parser("down", help="stop the stack and wait for every process").set_defaults(handler=_down)
    commands.add_parser("status", help="programs and readiness").set_defaults(handler=_status)
    commands.add_parser("reload", help="apply config changes without a restart").set_defaults(handler=_reload)

    render = commands.add_parser("render", help="write the rendered configs into a directory")
    render.add_argument("--out", required=True, type=Path, help="output directory")
    render.add_argument("--target", choices=["local", "kubernetes"], default="local",
                        help="local: nginx/supervisord/gunicorn configs; kubernetes: manifests")
    render.set_defaults(handler=_render)

    register = commands.add_parser("register", help="add a model file, Plumber script, MLflow model or vetiver "
                                                    "pin to the store")
    register.add_argument("name")
    register.add_argument("path", nargs="?",
                          help=".skops, .joblib, .onnx, .rds, a plumber .R / entrypoint.R or its folder, an MLflow "
                               "model directory (with an MLmodel file), or a runs:/ or models:/ URI "
                               "(MLFLOW_TRACKING_URI says where)")
    register.add_argument("--pins-board", type=Path, help="a pins folder board (board_folder) holding --pin")
    register.add_argument("--pin", help="a vetiver pin on --pins-board: NAME or NAME@VERSION (default: newest)")
    register.add_argument("--sample", type=Path, help="CSV slice of the training data (fixes the schema)")
    register.add_argument("--description", default="")
    register.add_argument("--target", help="the sample's target column, left out of the inputs")
    register.add_argument("--trust", action="store_true",
                          help="trust every type the .skops file holds that skops does not trust by "
                               "default (run once without it to list them, and review them), or a pickle "
                               "(.joblib, a pickled MLflow model, a vetiver Python pin)")
    register.set_defaults(handler=_register)

    logs = commands.add_parser("logs", help="the stack's logs merged in time order")
    logs.add_argument("--model", help="only lines about this model (its R workers, its requests)")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    logs.add_argument("--lines", "-n", type=int, default=200, help="how many lines to start with (default 200)")
    logs.set_defaults(handler=_logs)

    commands.add_parser("doctor", help="check this host against the config: one line per problem, with its fix"
                        ).set_defaults(handler=_doctor)

    init = commands.add_parser("init", help="write a commented gateway.toml, an empty store and a README into DIR")
    init.add_argument("dir", type=Path)
    init.set_defaults(handler=_init)

    setup = commands.add_parser("setup", help="install what a part of the gateway needs now, not at first use: "
                                "`setup r` installs the gatewayr R package into the gateway's R library")
    setup.add_argument("part", choices=["r"])
    setup.set_defaults(handler=_setup)

    keys_cli.add_parser(commands, _settings)
    certs.add_parser(commands)
    commands.add_parser("build-demo", help="build the demo models the store lacks").set_defaults(handler=_build_demo)
    # `--config` is accepted after the subcommand too: `gateway up --config x.toml`.
    for sub in commands.choices.values():
        sub.add_argument("--config", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _add_run_modes(command: argparse.ArgumentParser) -> None:
    """Attached (the default: Ctrl-C stops everything), --detach, or --exec (containers)."""
    mode = command.add_mutually_exclusive_group()
    mode.add_argument("--detach", action="store_true", help="return once ready; stop later with `gateway down`")
    mode.add_argument("--exec", dest="exec_supervisord", action="store_true",
                      help="become supervisord in the foreground (containers: PID 1)")


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get("GATEWAY_CONFIG")
    if path is None:
        if not Path("gateway.toml").is_file():
            raise ConfigError("no config: pass --config PATH, set GATEWAY_CONFIG, or run where gateway.toml is")
        path = "gateway.toml"
    return load_settings(path)


def _up(args: argparse.Namespace) -> int:
    """Start the stack; unless detached, stay attached until Ctrl-C (or SIGTERM), then stop it all."""
    from gateway.runtime.stack import down, up, wait_while_running

    settings = _settings(args)
    if settings.server.log_target == "stdout" and not args.exec_supervisord:
        raise ConfigError('server.log_target = "stdout" needs `gateway up --exec` (supervisord in the foreground, '
                          'its stdout the container\'s); a detached supervisord has no stdout: use "files" or "auto"')
    if args.exec_supervisord:
        # stderr: in a container, stdout carries only the stack's JSON log lines (server.log_target).
        print(f"gateway: supervisord takes over this process (run dir {settings.run_dir})", file=sys.stderr, flush=True)
    listen = getattr(args, "listen", None)
    plan = up(settings, port=args.port, foreground=args.exec_supervisord, listen=listen)
    if plan.role == "worker":
        print("\n".join(f"worker host: {name} ({len(pool.workers)} R workers) on {plan.listens[name].address}"
                        for name, pool in plan.pools.items()), flush=True)
    else:
        print(welcome(settings, plan), flush=True)
    if args.detach:
        print("stop with: gateway down")
        return 0
    print("Ctrl-C stops every process of the stack.", flush=True)
    # Installed explicitly: a shell that starts us in the background sets SIGINT to "ignore".
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        wait_while_running(settings.run_dir)
        print("gateway: supervisord exited; stopping what is left", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ngateway: stopping", flush=True)
        return 0
    finally:
        down(settings.run_dir)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def welcome(settings: Settings, plan: Plan) -> str:
    """The URL, a table of the models, and a predict a user can paste."""
    from gateway.runtime.stack import public_url

    url = public_url(plan)
    store = ModelStore(settings.store_path)
    rows = [("model", "version", "backend", "workers")]
    example = ""
    for model in settings.models.values():
        pool = plan.pools.get(model.name)
        version = pool.version if pool else _version_or_dash(store, model.name, model.version)
        rows.append((model.name, version, model.backend, str(len(pool.upstreams)) if pool else "-"))
        if not example and version not in ("-", "script"):
            example = _example_curl(url, model.name, store.read_meta(model.name, version).inputs)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    table = "\n".join("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                      for row in rows)
    lines = [f"gateway is up at {url}", table]
    if example:
        lines += ["try:", f"  {example}"]
    return "\n".join(lines)


def _version_or_dash(store: ModelStore, name: str, version: str) -> str:
    try:
        return store.resolve(name, version)
    except ConfigError:
        return "-"


_EXAMPLE_VALUES = {"double": 1.5, "integer": 1, "logical": True, "string": "text", "date": "2024-01-31",
                   "datetime": "2024-01-31T12:00:00Z"}


def _example_curl(url: str, name: str, inputs: Sequence[InputSpec]) -> str:
    row = {spec.name: (spec.levels[0] if spec.levels else _EXAMPLE_VALUES.get(spec.type)) for spec in inputs}
    body = json.dumps([row])
    return (f"curl -s {url}/models/{name}/predict -H 'Content-Type: application/json' "
            f"-d '{body}'")


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


def _logs(args: argparse.Namespace) -> int:
    from gateway.runtime.logs import follow, merged

    run_dir = _settings(args).run_dir
    if not (run_dir / "logs").is_dir():
        raise StackError(f"no logs in {run_dir}: the stack has not run there (see server.run_dir)")
    if not args.follow:
        for line in merged(run_dir, args.model, args.lines):
            print(line.render())
        return 0
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the normal way to stop following
        follow(run_dir, sys.stdout, args.model, args.lines)
    return 0


def _render(args: argparse.Namespace) -> int:
    from gateway.runtime.plan import make_plan
    from gateway.runtime.render import render_to

    settings = _settings(args)
    if args.target == "kubernetes":
        from gateway.runtime.kubernetes import write_manifests

        for name, path in write_manifests(settings, args.out).items():
            print(f"{name}: {path}")
        return 0
    for name, path in render_to(settings, make_plan(settings), args.out).items():
        print(f"{name}: {path}")
    return 0


def _register(args: argparse.Namespace) -> int:
    from gateway.importers.summary import summary
    from gateway.register import register_artefact

    settings = _settings(args)
    version = import_source(args, settings.store_path)
    if version is None:
        if args.path is None:
            raise ConfigError("gateway register NAME needs a PATH, or --pins-board DIR --pin NAME[@VERSION]")
        version = register_artefact(settings.store_path, args.name, Path(args.path), args.sample, args.description,
                                    trust=args.trust, target=args.target)
    print(f"registered {args.name} version {version} in {settings.store_path}")
    print(summary(ModelStore(settings.store_path).read_meta(args.name, version)))
    return 0


def import_source(args: argparse.Namespace, store: Path) -> str | None:
    """A model from where users keep it (an MLflow model, a vetiver pin): its version, else None."""
    from gateway.names import name_problem

    if problem := name_problem(args.name):  # before anything is downloaded or run
        raise ConfigError(problem)
    if args.pins_board is not None or args.pin is not None:
        from gateway.importers.pins import import_pin

        if args.pins_board is None or args.pin is None or args.path is not None:
            raise ConfigError("a pin is registered with --pins-board DIR --pin NAME[@VERSION] and no PATH")
        return import_pin(store, args.name, args.pins_board, args.pin, sample=args.sample,
                          description=args.description, trust=args.trust)
    from gateway.importers.mlflow import import_mlflow, is_mlflow_source

    if args.path is not None and is_mlflow_source(args.path):
        return import_mlflow(store, args.name, args.path, sample=args.sample, description=args.description,
                             trust=args.trust)
    return None


def _doctor(args: argparse.Namespace) -> int:
    from gateway.doctor import report, run

    problems = run(_settings(args))
    print(report(problems))
    return 1 if any(p.level == "error" for p in problems) else 0


def _init(args: argparse.Namespace) -> int:
    from gateway.scaffold import init_dir

    config = init_dir(args.dir)
    print(f"wrote {config}, {args.dir / 'store'}/ and {args.dir / 'README.txt'}; "
          f"next: gateway doctor --config {config}")
    return 0


def _setup(args: argparse.Namespace) -> int:
    from gateway.rlib import ensure_r_library, gatewayr_version, is_current, library_dir

    already = is_current(library_dir())
    library = ensure_r_library()
    print(f"gatewayr {gatewayr_version()} {'was already' if already else 'is now'} installed in {library}")
    return 0


def _build_demo(args: argparse.Namespace) -> int:
    from gateway.demo import build_demo_store

    built = build_demo_store(_settings(args))
    print(f"built demo models: {', '.join(built)}" if built else "demo models already built")
    return 0


if __name__ == "__main__":
    sys.exit(main())
