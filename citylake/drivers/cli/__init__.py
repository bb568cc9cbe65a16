"""The `citylake` command: one module per subcommand (see :mod:`.main`)."""

from citylake.drivers.cli.main import main

__all__ = ["main"]
