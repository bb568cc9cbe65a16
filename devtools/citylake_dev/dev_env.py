"""The committed development environment file, ``config/airflow-dev.env``, read and exported.

Connections (``spark_default`` = ``local[*]``, ``rsj_source_db`` = a SQLite file under
``$CITYLAKE_HOME``) and demo settings for the embedded Airflow. ``${VAR}`` references are expanded
from the settings (:meth:`citylake.core.settings.Settings.as_env`) and the environment; a variable
already set in the real environment always wins.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from citylake.core.settings import REPO_ROOT, Settings

DEV_ENV_FILE = REPO_ROOT / "config" / "airflow-dev.env"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _expand(value: str, variables: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(3)
        default = m.group(2)
        found = variables.get(name)
        if found in (None, "") and default is not None:
            return default
        if found is None:
            raise KeyError(f"{DEV_ENV_FILE.name}: ${{{name}}} is not set")
        return found

    return _VAR.sub(sub, value)


def parse_env_file(path: Path | str, variables: dict[str, str]) -> dict[str, str]:
    """``KEY=VALUE`` lines; ``#`` comments; ``${VAR}`` / ``${VAR:-default}`` expanded from
    ``variables`` and earlier lines; single-quoted values are literal, double-quoted are expanded."""
    out: dict[str, str] = {}
    for n, raw in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"{path}:{n}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            out[key] = value[1:-1]
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out[key] = _expand(value, {**variables, **out})
    return out


def dev_env(settings: Settings, path: Path | str = DEV_ENV_FILE) -> dict[str, str]:
    """The development file's values for these settings (not yet exported)."""
    variables = {**os.environ, **settings.as_env(), "CITYLAKE_REPO": str(REPO_ROOT)}
    return parse_env_file(path, variables)


def load_dev_env(settings: Settings | None = None, path: Path | str = DEV_ENV_FILE,
                 environ: dict | None = None, override: bool = False) -> dict[str, str]:
    """Export the development file into ``environ`` (default ``os.environ``); set variables win."""
    settings = settings or Settings.from_env()
    environ = os.environ if environ is None else environ
    values = dev_env(settings, path)
    for key, value in values.items():
        if override or key not in environ:
            environ[key] = value
    return values


