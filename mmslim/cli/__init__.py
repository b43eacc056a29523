"""The ``mmslim`` command line: :mod:`~mmslim.cli.main` (the commands) and
:mod:`~mmslim.cli.bench` (``mmslim bench <target>``). Each command is a thin wrapper over the
package."""

from mmslim.cli.main import main

__all__ = ["main"]
