"""Operator tooling: the CLI, the supervisor, the simulator; unlike shared/, it imports services."""
