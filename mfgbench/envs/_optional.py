"""The optional packages behind the environments, imported with an error that says how to install them."""
from __future__ import annotations

import importlib

INSTALL = 'pip install "mfgbench[rl]"'


def require(module: str, feature: str):
    """Import ``module`` for ``feature``, or raise ImportError naming the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{feature} needs the package {module.split('.')[0]!r}, which is not installed; "
                          f"install it with: {INSTALL}") from None
