"""`python -m reechannel`: the same as the `reechannel` command."""

from reechannel.cli import main

main()
