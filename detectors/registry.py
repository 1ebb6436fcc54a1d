"""Every detector Gatewatch can run, by type name: the one place to add one.

A config table ``[detection.detectors.NAME]`` picks its class by ``type`` (default:
``NAME``); every registered type not configured runs with its default params.
"""

from __future__ import annotations

from typing import Any

from detectors.base import Detector
from detectors.transport import InsecureTransport

DETECTORS: dict[str, type[Detector[Any]]] = {
    InsecureTransport.name: InsecureTransport,
}
