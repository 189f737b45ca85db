"""From a model checkpoint and a machine design to a program and a memory image."""
