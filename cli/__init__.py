"""The door: the `cip` command and the full settings object. The only package that wires stages together."""
