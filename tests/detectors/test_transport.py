from detectors.engine import DetectionEngine
from detectors.transport import InsecureTransport, InsecureTransportParams
from gatewatch.event import Event
from gatewatch.finding import Finding
from tests.detectors.events import BASE_TS, make_event


def run(events: list[Event], **params: object) -> list[Finding]:
    found: dict[str, Finding] = {}
    detector = InsecureTransport(InsecureTransportParams(**params))  # type: ignore[arg-type]
    engine = DetectionEngine([detector], lambda f: found.__setitem__(f.id, f), evidence_limit=None)
    for event in events:
        engine.process(event)
    engine.finish()
    return list(found.values())


def test_credentials_over_plain_http_make_one_finding_per_client() -> None:
    events = [
        make_event(
            ts=BASE_TS + i,
            scheme="http",
            client_ip="192.0.2.7",
            method="POST",
            route="/api/v1/auth/login",
            user="alice",
        )
        for i in range(5)
    ]
    (finding,) = run(events)
    assert finding.kind == "insecure_transport" and finding.subkind == "cleartext_credentials"
    assert finding.entity == "192.0.2.7"
    assert finding.evidence == tuple(e.request_id for e in events)
    assert "plain HTTP" in finding.summary and finding.first_ts == BASE_TS


def test_old_tls_is_flagged() -> None:
    (finding,) = run([make_event(tls_version="TLSv1.0", client_ip="192.0.2.8")])
    assert finding.subkind == "weak_tls" and "TLSv1.0" in finding.summary


def test_benign_plain_http_without_credentials_and_allowlisted_clients_pass() -> None:
    events = [
        make_event(scheme="http", route="/healthz", client_ip="10.0.0.5"),  # no credential
        make_event(scheme="http", user="probe", client_ip="10.0.0.6"),
        make_event(scheme="", tls_version="", user="", client_ip=""),  # fields missing
    ]
    assert run(events, allow={"ips": ["10.0.0.0/8"]}) == []


def test_a_quiet_client_starts_a_new_episode() -> None:
    events = [make_event(ts=BASE_TS, tls_version="TLSv1.1", client_ip="192.0.2.9")]
    events.append(make_event(ts=BASE_TS + 5_000, tls_version="TLSv1.1", client_ip="192.0.2.9"))
    assert len(run(events, episode_quiet_s=600)) == 2
