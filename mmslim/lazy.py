"""Names of a package imported on first use (PEP 562), so that importing the package imports
nothing heavy: the exported codec (:mod:`mmslim.export.sensor`) runs without PyTorch, although
``mmslim`` and ``mmslim.export`` also name torch-based classes."""

from __future__ import annotations

import importlib


def lazy_names(package: str, homes: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public names are defined in the modules
    ``homes`` gives (name -> module), each imported when the name is first used."""

    def __getattr__(name: str):
        if name in homes:
            return getattr(importlib.import_module(homes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(homes)

    return __getattr__, __dir__


__all__ = ["lazy_names"]
