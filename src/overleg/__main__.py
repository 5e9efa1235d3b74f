"""``python -m overleg``: the ``overleg`` command."""

from overleg.cli import main

main()
