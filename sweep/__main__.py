"""`python -m sweep`: the CLI, for hosts where the `sweep` script is not on PATH (Ray job entrypoints)."""

from sweep.cli import main

main()
