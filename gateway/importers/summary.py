"""What `gateway register` prints: the stored version's schema, packages and sha256, and the
`[models]` entry to paste into gateway.toml."""

from __future__ import annotations

from gateway.backends import KINDS
from gateway.meta import ModelMeta


def backend_for(meta: ModelMeta) -> str:
    """The backend that serves this artefact: R → plumber, a kind's own format → that kind."""
    if meta.language == "r":
        return "plumber"
    return next((k.name for k in KINDS if k.saver is not None and k.saver.fmt == meta.format), "python")


def packages(meta: ModelMeta) -> dict[str, str]:
    """Package → version the model needs: R's framework.packages, Python's framework entries."""
    if meta.language == "r":
        return {str(k): str(v) for k, v in (meta.framework.get("packages") or {}).items()}
    found = {str(k): str(v) for k, v in meta.framework.items() if k not in ("python", "gateway")}
    if "scikit-learn" in found:  # a vetiver pin's required_pkgs name it as pip does
        found.pop("sklearn", None)
    return found


def summary(meta: ModelMeta) -> str:
    """Lines for a human: inputs, outputs, packages, sha256, then the TOML entry."""
    lines = [f"{meta.name} version {meta.version}: {meta.language} model, {meta.format} artefact {meta.artefact}",
             "inputs:"]
    for spec in meta.inputs:
        levels = f" levels {', '.join(spec.levels)}" if spec.levels else ""
        lines.append(f"  {spec.name}: {spec.type}{levels}{' (nullable)' if spec.nullable else ''}")
    if not meta.inputs:
        lines.append("  (none declared)")
    kind = meta.outputs.get("kind")
    if kind:
        classes = meta.outputs.get("classes")
        lines.append(f"outputs: {kind}" + (f", classes {', '.join(map(str, classes))}" if classes else ""))
    needed = packages(meta)
    lines.append("packages: " + (", ".join(f"{k} {v}" for k, v in sorted(needed.items())) or "none"))
    lines.append(f"sha256: {meta.sha256}")
    lines += ["", "add to gateway.toml:", "", *config_entry(meta)]
    return "\n".join(lines)


def config_entry(meta: ModelMeta) -> list[str]:
    """The `[models.NAME]` table that serves this version."""
    lines = [f"[models.{meta.name}]", f'backend = "{backend_for(meta)}"',
             f'version = "latest"      # or pin this one: version = "{meta.version}"']
    if meta.format == "joblib":
        lines.append("trusted = true          # a pickle: loading it runs its code (you passed --trust)")
    return lines
