"""The ``gatewatch`` command line."""
