"""The wheel carries what the gateway opens at run time, and nothing looks into the source tree.

A file the stack needs but pyproject.toml's package-data misses works in the checkout and fails
only once installed: these catch it without building a wheel (tests/integration/
test_wheel_install.py builds one).
"""

from __future__ import annotations

import ast
import fnmatch
import tomllib
from pathlib import Path

from gateway import paths, rlib

PACKAGE = paths.REPO_ROOT / "gateway"
# The checkout's own tools, never run by an installed gateway: the docs generator writes
# docs/architecture.md in the checkout.
DEV_TOOLS = {"docs_gen.py"}


def package_data() -> list[str]:
    config = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["setuptools"]["package-data"]["gateway"]


def shipped(relative: str) -> bool:
    """As setuptools globs package-data: `*` stays within one path component."""
    parts = relative.split("/")
    return any(len(parts) == len(pattern.split("/")) and all(map(fnmatch.fnmatch, parts, pattern.split("/")))
               for pattern in package_data())


def test_every_gatewayr_source_r_cmd_install_needs_is_package_data() -> None:
    sources = paths.gatewayr_sources()
    needed = [p for entry in rlib.SHIPPED for p in ([sources / entry] if (sources / entry).is_file()
                                                     else (sources / entry).rglob("*")) if p.is_file()]
    assert len(needed) > 10
    missing = [str(p.relative_to(sources)) for p in needed if not shipped(f"_r/r_services/{p.relative_to(sources)}")]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_entrypoints_templates_and_static_files_are_package_data() -> None:
    folders = ("runtime/templates", "static", "_r/demo", "_r/plumber/cars")
    files = [*paths.resource("_r/plumber").glob("*.R"),
             *(p for folder in folders for p in paths.resource(folder).rglob("*") if p.is_file())]
    assert paths.r_entrypoint("worker.R") in files and paths.r_entrypoint("script.R") in files
    missing = [str(f.relative_to(PACKAGE)) for f in files if not shipped(str(f.relative_to(PACKAGE)))]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def source_tree_lookups(package: Path) -> list[str]:
    """Each use of REPO_ROOT or __file__ in the package's runtime modules: `module:line name`."""
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name in DEV_TOOLS or path == package / "paths.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
            if name in {"REPO_ROOT", "__file__"}:
                found.append(f"{path.relative_to(package)}:{node.lineno} {name}")
    return found


def test_no_module_finds_files_relative_to_the_source_tree() -> None:
    """REPO_ROOT and paths built from __file__ point into the checkout, which an installed wheel lacks."""
    offenders = source_tree_lookups(PACKAGE)
    assert not offenders, f"use gateway.paths.resource (package data) instead: {offenders}"
