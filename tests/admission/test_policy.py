"""`Admission`: caps per address, in total and by open-file headroom; one log line per episode."""

from __future__ import annotations

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from chorus.admission import Admission, ConnectionLimits, Listener, Refusal, Ticket

HTTP = Listener.HTTP


def admission(file_limit: int = 100_000, **limits: object) -> Admission:
    return Admission(ConnectionLimits(**limits), file_limit=file_limit)  # type: ignore[arg-type]


def admitted(decision: Ticket | Refusal) -> Ticket:
    assert isinstance(decision, Ticket), decision
    return decision


def refused(listener: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "chorus_connections_refused_total", {"listener": listener, "reason": reason}
    )
    return value or 0.0


def test_an_address_holds_at_most_its_cap_and_others_are_not_affected() -> None:
    gate = admission(max_connections_per_address=2)
    before = refused("gateway", "per_address")
    first = admitted(gate.admit(Listener.GATEWAY, "192.0.2.1"))
    admitted(gate.admit(HTTP, "192.0.2.1"))  # both listeners count toward one cap
    assert gate.admit(Listener.GATEWAY, "192.0.2.1") is Refusal.PER_ADDRESS
    assert refused("gateway", "per_address") == before + 1
    admitted(gate.admit(HTTP, "192.0.2.2"))
    first.release()
    first.release()  # idempotent
    admitted(gate.admit(HTTP, "192.0.2.1"))
    assert gate.open == 3


def test_ipv6_clients_are_counted_per_64_and_mapped_ipv4_as_ipv4() -> None:
    gate = admission(max_connections_per_address=1)
    admitted(gate.admit(HTTP, "2001:db8:1:2::1"))
    assert gate.admit(HTTP, "2001:db8:1:2:ffff::9") is Refusal.PER_ADDRESS
    admitted(gate.admit(HTTP, "2001:db8:1:3::1"))
    admitted(gate.admit(HTTP, "192.0.2.1"))
    assert gate.admit(HTTP, "::ffff:192.0.2.1") is Refusal.PER_ADDRESS


def test_trusted_proxies_are_exempt_from_the_address_cap_but_not_the_total() -> None:
    gate = admission(
        max_connections=3, max_connections_per_address=1, trusted_proxies=("10.0.0.0/8",)
    )
    for _ in range(3):
        admitted(gate.admit(HTTP, "10.0.0.5"))
    assert gate.admit(HTTP, "10.0.0.5") is Refusal.TOTAL


def test_the_total_cap_logs_once_per_episode() -> None:
    gate = admission(max_connections=10)
    tickets = [admitted(gate.admit(HTTP, f"192.0.2.{i}")) for i in range(10)]
    with capture_logs() as logs:
        for _ in range(5):
            assert gate.admit(HTTP, "198.51.100.1") is Refusal.TOTAL
        tickets.pop().release()  # 9 open: not yet below 90% of 10
        assert gate.admit(HTTP, "198.51.100.1") is not Refusal.TOTAL
        assert gate.admit(HTTP, "198.51.100.1") is Refusal.TOTAL
        for ticket in tickets[:3]:
            ticket.release()  # 7 open: the episode is over
        for i in range(3):
            admitted(gate.admit(HTTP, f"198.51.100.{i + 2}"))
        assert gate.admit(HTTP, "198.51.100.9") is Refusal.TOTAL  # a new episode
    events = [(log["event"], log.get("reason")) for log in logs]
    assert events == [
        ("admission.limit_reached", "total"),
        ("admission.limit_recovered", "total"),
        ("admission.limit_reached", "total"),
    ]


def test_near_the_open_file_limit_connections_are_refused() -> None:
    gate = admission(file_limit=50, reserved_file_descriptors=40)
    assert gate.file_cap == 10
    tickets = [admitted(gate.admit(HTTP, f"192.0.2.{i}")) for i in range(9)]
    gate.refusal_started()  # a socket being refused holds a descriptor too
    with capture_logs() as logs:
        assert gate.admit(HTTP, "192.0.2.200") is Refusal.FILE_LIMIT
        assert gate.admit(Listener.GATEWAY, "192.0.2.201") is Refusal.FILE_LIMIT
        gate.refusal_finished()
        for ticket in tickets[:2]:
            ticket.release()
    assert [(log["event"], log.get("reason")) for log in logs] == [
        ("admission.limit_reached", "file_limit"),
        ("admission.limit_recovered", "file_limit"),
    ]
    assert logs[0]["open_file_limit"] == 50
