"""Write the generated tables of docs/architecture.md from the code, so the contract cannot drift.

    python -m gateway.docs_gen            rewrite the blocks between the markers
    python -m gateway.docs_gen --check    exit 1, naming the stale blocks, if the page is out of date

Five blocks: the routes (the Flask app's URL map), the config keys (the settings dataclasses;
a field's comments in gateway/settings.py are its documentation), the errors (the GatewayError
classes in gateway/errors.py; a class's docstring says when it is raised), the backend kinds
(gateway.backends.KINDS) and the R worker's error replies (tests/data/wire_errors.json, the
golden file pytest and testthat both check).
Everything outside the markers is written by hand and left alone.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import re
import sys
import tempfile
import tokenize
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_type_hints

from gateway import errors, settings
from gateway.backends import KINDS
from gateway.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "architecture.md"
WIRE_ERRORS = REPO_ROOT / "tests" / "data" / "wire_errors.json"
# TOML table of each settings dataclass, in the order the page lists them.
SECTIONS: tuple[tuple[str, type], ...] = (
    ("server", settings.ServerSettings),
    ("store", settings.StoreSettings),
    ("models.<name>", settings.ModelSettings),
    ("models.<name>.batch", settings.BatchSettings),
    ("models.<name>.workers", settings.PoolScale),
    ("models.<name>.log_predictions", settings.PredictionLogSettings),
    ("kubernetes", settings.KubernetesSettings),
)
# the table's name; sub-tables
_NOT_KEYS = {("models.<name>", "name"), ("models.<name>", "batch"), ("models.<name>", "log_predictions")}
_HIDDEN_METHODS = {"HEAD", "OPTIONS"}  # Flask adds them to every GET route


def route_rows(app: Any) -> list[tuple[str, str, str, str]]:
    """(methods, path, view, what) for every rule of a Flask app, sorted by path."""
    rows = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        what = _first_line(view.__doc__) or _first_line(sys.modules[view.__module__].__doc__)
        methods = ", ".join(sorted(set(rule.methods or ()) - _HIDDEN_METHODS))
        rows.append((methods, rule.rule, rule.endpoint, what))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def config_rows(source: str | None = None) -> list[tuple[str, str, str, str]]:
    """(key, type, default, what) for every config key; `what` is the field's comments."""
    comments = field_comments(source if source is not None else Path(settings.__file__).read_text("utf-8"))
    rows = []
    for table, cls in SECTIONS:
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if (table, f.name) in _NOT_KEYS:
                continue
            rows.append((f"{table}.{f.name}", _type_name(hints[f.name]), _default(f),
                         comments.get((cls.__name__, f.name), "")))
    return rows


def error_rows() -> list[tuple[str, str, str, str, str, str]]:
    """(class, status, code, title, MLflow error_code, when) for every GatewayError subclass."""
    from gateway.codecs.mlflow import ERROR_CODES

    rows = []
    classes: list[type[errors.GatewayError]] = [errors.GatewayError, *_subclasses(errors.GatewayError)]
    for cls in classes:
        rows.append((cls.__name__, str(cls.status), cls.code, cls.title,
                     ERROR_CODES.get(cls.status, "INTERNAL_ERROR"), _first_paragraph(cls.__doc__)))
    return sorted(rows, key=lambda row: (row[1], row[0]))


def wire_error_rows() -> list[tuple[str, str, str, str]]:
    """(R status, R code, when, the gateway's answer) for every golden R error reply."""
    cases = json.loads(WIRE_ERRORS.read_text(encoding="utf-8"))["cases"]
    return [(str(c["r"]["status"]), c["r"]["code"], c["when"], f'{c["gateway"]["status"]} `{c["gateway"]["code"]}`')
            for c in cases]


def field_comments(source: str) -> dict[tuple[str, str], str]:
    """(class, field) → the comment lines just above a dataclass field plus its trailing comment."""
    by_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            by_line[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    found = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt in node.body:
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
                continue
            above: list[str] = []
            line = stmt.lineno - 1
            while line in by_line and lines[line - 1].lstrip().startswith("#"):
                above.insert(0, by_line[line])
                line -= 1
            trailing = [by_line[n] for n in range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1) if n in by_line]
            found[(node.name, stmt.target.id)] = " ".join([*above, *trailing])
    return found


def generated_blocks(app: Any) -> dict[str, str]:
    """Marker name → the Markdown that belongs between its markers."""
    return {
        "routes": _table(("method", "path", "view", "what"),
                         [(m, f"`{p}`", f"`{v}`", w) for m, p, v, w in route_rows(app)]),
        "config": _table(("key", "type", "default", "what"),
                         [(f"`{k}`", f"`{t}`", d if d.startswith("(") else f"`{d}`", w)
                          for k, t, d, w in config_rows()]),
        "errors": _table(("class", "status", "code", "title", "MLflow `error_code`", "when"),
                         [(f"`{c}`", s, f"`{code}`", t, f"`{m}`", w) for c, s, code, t, m, w in error_rows()]),
        "backends": _table(("backend", "language", "serves", "R pools", "preloaded", "its own keys", "register fmt"),
                           [(f"`{k.name}`", k.language, k.summary, "yes" if k.r_pool else "no",
                             ", ".join(f"`{m}`" for m in k.preload) or "-",
                             ", ".join(f"`{key}`" for key in k.keys) or "-",
                             f"`{k.saver.fmt}`" if k.saver else "-") for k in KINDS]),
        "wire-errors": _table(("R status", "R code", "when", "the gateway answers"),
                              [(s, f"`{code}`", w, g) for s, code, w, g in wire_error_rows()]),
    }


def rewrite(text: str, blocks: dict[str, str]) -> str:
    """The page with each generated block replaced; a marker pair missing from the page is an error."""
    for name, body in blocks.items():
        pattern = _block(name)
        if not pattern.search(text):
            raise ValueError(f"docs/architecture.md has no '<!-- generated:{name} -->' ... "
                             f"'<!-- /generated:{name} -->' pair; add one where the {name} table belongs")
        text = pattern.sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(3)}", text)  # noqa: B023 (called at once)
    return text


def stale_blocks(text: str, blocks: dict[str, str]) -> list[str]:
    """What differs between the page and the code, one line per missing or stale table row."""
    problems = []
    for name, body in blocks.items():
        match = _block(name).search(text)
        if match is None:
            problems.append(f"{name}: the page has no generated:{name} markers")
            continue
        have, want = _rows(match.group(2)), _rows(body)
        problems += [f"{name}: missing from the page: {row}" for row in want if row not in have]
        problems += [f"{name}: stale on the page (not in the code): {row}" for row in have if row not in want]
        if not problems and match.group(2).strip() != body.strip():
            problems.append(f"{name}: same rows, different text or order")
    return problems


def docs_app() -> Any:
    """An app with every blueprint and no model: enough for its URL map."""
    from gateway.app import create_app
    from gateway.topology import Endpoint, Plan

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = settings.settings_from_dict({"server": {"run_dir": str(base / "run")},
                                              "store": {"path": str(base / "store")}}, base_dir=base)
        unused = Endpoint("127.0.0.1", 0)
        return create_app(config, Plan(run_dir=str(base / "run"), public=unused, gunicorn=unused,
                                       internal=unused, pools={}))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = DOC.read_text(encoding="utf-8")
    blocks = generated_blocks(docs_app())
    if args == ["--check"]:
        problems = stale_blocks(text, blocks)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `python -m gateway.docs_gen` to rewrite the generated blocks", file=sys.stderr)
        return 1 if problems else 0
    if args:
        print(__doc__, file=sys.stderr)
        return 2
    DOC.write_text(rewrite(text, blocks), encoding="utf-8")
    return 0


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{name} -->)\n(.*?)\n?(<!-- /generated:{name} -->)", re.DOTALL)


def _rows(markdown: str) -> list[str]:
    return [line.strip() for line in markdown.splitlines()[2:] if line.strip().startswith("|")]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _subclasses(cls: type[errors.GatewayError]) -> Iterator[type[errors.GatewayError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _first_line(doc: str | None) -> str:
    return inspect.cleandoc(doc).split("\n", 1)[0] if doc else ""


def _first_paragraph(doc: str | None) -> str:
    return " ".join(inspect.cleandoc(doc).split("\n\n", 1)[0].split()) if doc else ""


def _type_name(hint: Any) -> str:
    return re.sub(r"\btyping\.|\bgateway\.settings\.", "", hint.__name__ if isinstance(hint, type) else str(hint))


def _default(f: dataclasses.Field[Any]) -> str:
    """The default as it would be written in gateway.toml."""
    if f.default is not dataclasses.MISSING:
        return _toml(f.default)
    factory: Callable[[], Any] | Any = f.default_factory
    if factory is not dataclasses.MISSING:
        value = factory()
        return "(table)" if dataclasses.is_dataclass(value) else _toml(value)
    return "required"


def _toml(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | tuple | list):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


if __name__ == "__main__":
    raise SystemExit(main())
