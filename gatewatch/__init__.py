"""Gatewatch: a log-streaming API threat monitor.

The core package holds what every stage shares: the Event and Finding models, the
settings, the ClickHouse store, the pipeline that wires the stages and the CLI.
"""

__version__ = "0.1.0"
