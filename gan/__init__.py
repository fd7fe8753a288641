"""gan: placeholder package; see the project README."""
