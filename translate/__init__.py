"""translate: placeholder package; see the project README."""
