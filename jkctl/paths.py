"""Where jkctl keeps its files on the laptop, following the XDG base directories.

- state (daemon pid, log, token, tunnel sockets): `$JKCTL_STATE_DIR`, else
  `$XDG_STATE_HOME/jkctl`, else `~/.local/state/jkctl`;
- data (the user's own kernelspecs): `$JKCTL_DATA_DIR`, else
  `$XDG_DATA_HOME/jkctl`, else `~/.local/share/jkctl`;
- config (`config.yaml`): `$JKCTL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/jkctl`,
  else `~/.config/jkctl`;
- bundled resources (`kernel-templates/`, `images/`): inside the installed
  package (`jkctl/_data/`), or at the top of a source checkout.

Functions take the environment explicitly (defaulting to `os.environ`) so
tests can point everything at a temporary directory. Nothing here creates
directories; callers that write do, with the permissions they need.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def _base(env: Mapping[str, str], override: str, xdg: str, fallback: str) -> Path:
    if env.get(override):
        return Path(env[override]).expanduser()
    if env.get(xdg):
        return Path(env[xdg]).expanduser() / "jkctl"
    return Path.home() / fallback / "jkctl"


def state_dir(env: Mapping[str, str] = os.environ) -> Path:
    return _base(env, "JKCTL_STATE_DIR", "XDG_STATE_HOME", ".local/state")


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    return _base(env, "JKCTL_DATA_DIR", "XDG_DATA_HOME", ".local/share")


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    return _base(env, "JKCTL_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")


def user_kernels_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The user's own kernelspecs: `jkctl kernelspecs install` and `--register` write here."""
    return data_dir(env) / "kernels"


def bundled(name: str) -> Path:
    """A bundled resource folder (`kernel-templates` or `images`).

    In an installed wheel it lives in `jkctl/_data/NAME`; in a source checkout
    (including editable installs) at the repository's top level.
    """
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / "_data" / name
    if installed.is_dir():
        return installed
    return package_dir.parent / name
