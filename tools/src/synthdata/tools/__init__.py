"""synthdata command-line entry points."""
