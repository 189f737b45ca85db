"""Top of the stack: family registry, verification glue, explorer and command line."""
