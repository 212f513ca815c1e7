"""Where the package's own files are: package data found with importlib.resources.

The wheel carries the R side as package data under gateway/_r (r_services/: the gatewayr
package's sources; plumber/: the Rscript entrypoints; demo/), next to the templates and static
assets. In a checkout gateway/_r holds symlinks to the same folders, so one lookup serves an
installed wheel and an editable install alike. Files must be on disk (R and supervisord open
them by path): the package cannot run from a zip.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "gateway"


def package_dir() -> Path:
    """The installed gateway package (site-packages/gateway, or the checkout's gateway/), resolved."""
    return Path(str(resources.files(PACKAGE))).resolve()


def resource(relative: str) -> Path:
    """A file or folder of the package's data, by its path inside the package (`_r/plumber/worker.R`)."""
    return package_dir() / relative


def r_entrypoint(name: str) -> Path:
    """An Rscript entrypoint the stack runs (worker.R, script.R)."""
    return resource(f"_r/plumber/{name}")


def gatewayr_sources() -> Path:
    """The gatewayr R package's sources (what `R CMD INSTALL` takes)."""
    return resource("_r/r_services")


def checkout_root() -> Path | None:
    """The source checkout this package runs from (an editable install), else None.

    Only the checkout's own tools use it: its R library (.rlib, made by `make deps`) and the docs
    generator. An installed wheel has no checkout.
    """
    root = package_dir().parent
    return root if (root / "pyproject.toml").is_file() and (root / "r_services" / "DESCRIPTION").is_file() else None


# The checkout, for the tests, the benchmarks and the docs generator (never for serving).
REPO_ROOT = package_dir().parent
