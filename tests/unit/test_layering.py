"""The import rules of the gateway package, read from its source (ast), and proof that they bite.

A group is a subpackage (`api`, `backends`, `codecs`, `runtime`) or a top-level module. Groups
sit in layers; a group imports only from lower layers, or sideways within its layer where
SIDEWAYS says so. Every import counts, including those inside functions and under
TYPE_CHECKING: a lazy import that dodges a cycle is still a cycle. No two modules and no two
groups may import each other, directly or around a loop.

A new module fails here until it is placed in a layer: put it where what it imports allows.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"

# Top layer first.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("entry points", frozenset({"gateway", "cli", "wsgi", "keys_cli", "demo", "docs_gen", "doctor",
                                "scaffold", "certs"})),
    # The Flask app factory, and the process runtime that starts Gunicorn (which builds the app
    # through gateway.wsgi): neither imports the other. job_runner: the process that scores jobs.
    ("processes", frozenset({"app", "runtime", "job_runner"})),
    ("http", frozenset({"api", "auth", "instrument", "responses", "openapi", "openapi_v2", "protocol",
                        "error_pipeline"})),
    # register: a kind with its own artefact format writes it (gateway.backends.kinds.Saver).
    # importers: MLflow models and vetiver pins, stored through register.
    ("service", frozenset({"service", "streaming", "registry", "batching", "bulkhead", "register", "importers",
                           "drift", "predlog", "predlog_sinks", "jobs"})),
    ("backends", frozenset({"backends"})),
    ("storage and codecs", frozenset({"store", "schema_infer", "names", "codecs", "integrity",
                                      "script_deps", "rscript", "drift_reference", "rlib"})),
    # Leaves: the plan as data (topology), settings, errors, metric definitions.
    ("foundations", frozenset({"errors", "meta", "context", "metrics", "status", "routing", "paths",
                               "topology", "client", "settings", "private_files", "unix_http", "probe", "poolstate",
                               "hoststate", "tracing", "status_series", "psi", "logbatch"})),
)
# Imports between groups of one layer, by importing group.
SIDEWAYS: dict[str, frozenset[str]] = {
    "cli": frozenset({"keys_cli", "demo", "doctor", "scaffold", "certs"}),
    "api": frozenset({"responses", "openapi", "openapi_v2", "protocol"}),
    # The registered protocols: which URL variable names the model, which envelope an error takes.
    "auth": frozenset({"protocol"}),
    "instrument": frozenset({"protocol"}),
    "error_pipeline": frozenset({"protocol"}),
    "protocol": frozenset({"openapi"}),
    "service": frozenset({"registry", "batching", "bulkhead", "drift", "predlog"}),
    "importers": frozenset({"register"}),
    "predlog": frozenset({"predlog_sinks"}),
    "streaming": frozenset({"service"}),
    "store": frozenset({"names"}),
    "script_deps": frozenset({"rscript"}),
    "rscript": frozenset({"rlib"}),
    "integrity": frozenset({"store"}),
    "settings": frozenset({"errors"}),
    "tracing": frozenset({"errors"}),  # an OTEL_* value it cannot serve is a ConfigError
    "status_series": frozenset({"status", "private_files"}),  # the chart's snapshots of the status totals
    "topology": frozenset({"private_files"}),
    "unix_http": frozenset({"topology", "probe"}),
    "probe": frozenset({"topology"}),
    "hoststate": frozenset({"private_files", "settings"}),
}


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package at root (a package is its __init__)."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def module_imports(root: Path) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports, anywhere in its source."""
    modules = module_names(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(_longest_known(alias.name, modules) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, name, is_package)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else _longest_known(base, modules))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def _longest_known(dotted: str, modules: Mapping[str, Path]) -> str:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return ""  # outside the package


def group_of(module: str) -> str:
    """`pkg.api.v2` → `api`; `pkg.errors` → `errors`; the package itself → its own name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def rule_violations(graph: Mapping[str, Iterable[str]], layers: tuple[tuple[str, frozenset[str]], ...],
                    sideways: Mapping[str, frozenset[str]]) -> list[str]:
    """Every import that goes up a layer or sideways without a SIDEWAYS entry, and every unplaced group."""
    rank = {group: len(layers) - i for i, (_, groups) in enumerate(layers) for group in groups}
    layer_name = {group: name for name, groups in layers for group in groups}
    problems = sorted({f"{group_of(m)} ({m}) is in no layer: add it to LAYERS"
                       for m in graph if group_of(m) not in rank})
    for source, targets in sorted(graph.items()):
        here = group_of(source)
        for target in sorted(targets):
            there = group_of(target)
            if here == there or here not in rank or there not in rank:
                continue
            if rank[there] > rank[here]:
                problems.append(f"{source} imports {target}: layer '{layer_name[here]}' may not import "
                                f"the higher layer '{layer_name[there]}'")
            elif rank[there] == rank[here] and there not in sideways.get(here, frozenset()):
                problems.append(f"{source} imports {target}: '{here}' and '{there}' share the layer "
                                f"'{layer_name[here]}' and SIDEWAYS does not allow {here} -> {there}")
    return problems


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def group_graph(graph: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for source, targets in graph.items():
        groups.setdefault(group_of(source), set()).update(
            group_of(t) for t in targets if group_of(t) != group_of(source))
    return groups


def test_every_gateway_import_follows_the_layers() -> None:
    graph = module_imports(GATEWAY)
    assert len(graph) > 50, "the parser found too few modules: is GATEWAY the package?"
    assert rule_violations(graph, LAYERS, SIDEWAYS) == []


def test_no_two_gateway_modules_or_groups_import_each_other() -> None:
    graph = module_imports(GATEWAY)
    assert cycles(graph) == []
    assert cycles(group_graph(graph)) == []


def test_the_checker_catches_an_upward_import_a_cycle_and_an_unplaced_module(tmp_path: Path) -> None:
    # The old gateway in miniature: views import helpers from the app that imports the views,
    # backends import the runtime's plan, and the runtime imports the registry of backends.
    files = {
        "__init__.py": "",
        "errors.py": "",
        "app.py": "from pkg.api import views\n",
        "api/__init__.py": "",
        "api/views.py": "from pkg.app import json_response\nfrom . import helpers\n",
        "api/helpers.py": "from ..errors import GatewayError\n",
        "backends/__init__.py": "",
        "backends/plumber.py": "def pool():\n    from pkg.runtime.plan import PoolPlan\n",
        "registry.py": "import pkg.backends.plumber\n",
        "runtime/__init__.py": "",
        "runtime/plan.py": "from pkg import errors\n",
        "runtime/stack.py": "from pkg.registry import build\n",
        "newcomer.py": "",
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text, encoding="utf-8")
    layers = (
        ("processes", frozenset({"app", "runtime", "job_runner"})),
        ("http", frozenset({"api"})),
        ("service", frozenset({"registry"})),
        ("backends", frozenset({"backends"})),
        ("foundations", frozenset({"errors", "pkg"})),
    )
    graph = module_imports(tmp_path / "pkg")
    assert graph["pkg.api.views"] == {"pkg.app", "pkg.api.helpers"}  # relative import resolved
    assert graph["pkg.api.helpers"] == {"pkg.errors"}
    assert graph["pkg.runtime.plan"] == {"pkg.errors"}  # `from pkg import errors` is the submodule
    assert rule_violations(graph, layers, {}) == [
        "newcomer (pkg.newcomer) is in no layer: add it to LAYERS",
        "pkg.api.views imports pkg.app: layer 'http' may not import the higher layer 'processes'",
        "pkg.backends.plumber imports pkg.runtime.plan: layer 'backends' may not import the higher layer "
        "'processes'",
    ]
    assert cycles(graph) == [["pkg.api.views", "pkg.app"]]
    assert cycles(group_graph(graph)) == [["api", "app"], ["backends", "registry", "runtime"]]


def test_supervisord_event_listeners_import_nothing_heavy() -> None:
    # They start once per event stream and live as long as the stack: pandas alone is 0.5 s, 78 MB.
    heavy = ("pandas", "numpy", "sklearn", "flask", "gateway.register")
    code = ("import sys, gateway.runtime.watchdog, gateway.runtime.restarts; "
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == ""


def test_docs_architecture_lists_the_same_layers() -> None:
    page = (GATEWAY.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| ")}
    for name, groups in LAYERS:
        assert name in rows, f"docs/architecture.md has no row for the layer '{name}'"
        cells = set(re.findall(r"`([a-z0-9_]+)/?`", rows[name].split("|")[2]))
        assert cells == groups, f"layer '{name}': the page lists {sorted(cells)}, the rules {sorted(groups)}"
