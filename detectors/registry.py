"""Every detector Gatewatch can run, by type name: the one place to add one.

A config table ``[detection.detectors.NAME]`` picks its class by ``type`` (default:
``NAME``); every registered type not configured runs with its default params.
"""

from __future__ import annotations

from typing import Any

from detectors.anomaly.detector import AnomalyModel
from detectors.base import Detector
from detectors.bola import Bola
from detectors.brute_force import BruteForce
from detectors.enumeration import EndpointScanning, UserEnumeration
from detectors.keys import TokenMisuse
from detectors.payload.detector import PayloadDetector
from detectors.requests import MalformedRequest, OversizedPayload
from detectors.spraying import PasswordSpraying
from detectors.stuffing import CredentialStuffing
from detectors.transport import InsecureTransport
from detectors.volume import DataExfiltration, RateAnomaly

DETECTORS: dict[str, type[Detector[Any]]] = {
    detector.name: detector
    for detector in (
        BruteForce,
        CredentialStuffing,
        PasswordSpraying,
        Bola,
        EndpointScanning,
        UserEnumeration,
        RateAnomaly,
        DataExfiltration,
        OversizedPayload,
        MalformedRequest,
        TokenMisuse,
        InsecureTransport,
        PayloadDetector,
        AnomalyModel,
    )
}
