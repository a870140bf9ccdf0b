"""``python -m kalshi_platform``: the same CLI as the ``kalshi-platform`` script."""

from kalshi_platform.tools.cli import main

main()
