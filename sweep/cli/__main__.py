"""`python -m sweep.cli`: the same CLI as the `sweep` script."""

from sweep.cli import main

main()
