"""`python -m agentwaves`."""

from agentwaves.cli.app import main

main()
