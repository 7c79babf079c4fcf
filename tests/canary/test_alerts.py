"""Alerts: parsed with clear errors, recorded on the Deployment before the webhook answers, matched by
the pure machine; one target that cannot be recorded never loses the others."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from canary.alerts import Alert, AlertIntake, PayloadError, decode, encode, firing_alert, parse_payload, target_of
from canary.config import AlertMatcher


class Book:
    """An AlertWriter over plain dicts: what the annotation weir.dev/alerts holds per Deployment."""

    def __init__(self, broken: set[str] | None = None) -> None:
        self.values: dict[tuple[str, str], str | None] = {}
        self.broken = broken or set()

    def record_alerts(self, namespace: str, name: str, change: Callable[[str | None], str | None]) -> None:
        if name in self.broken:
            raise RuntimeError("the API server refused the write")
        self.values[(namespace, name)] = change(self.values.get((namespace, name)))


def payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "alerts": list(alerts)}


def alert(name: str, **labels: str) -> dict[str, Any]:
    return {"status": "firing", "labels": {"alertname": name, "namespace": "shop", **labels},
            "annotations": {"summary": f"{name} is firing"}}


def intake(book: Book, in_progress: set[str], woken: list[tuple[str, str]],
           rules: tuple[tuple[AlertMatcher, ...], ...] = ()) -> AlertIntake:
    def lookup(key: tuple[str, str]) -> Mapping[str, Any] | None:
        return {"metadata": {"name": key[1]}} if key[1] in in_progress | book.broken else None

    return AlertIntake(lookup=lookup, rules_for=lambda d: rules, writer=book, wake=woken.append, clock=lambda: 50.0)


def test_firing_alerts_are_recorded_per_release_and_wake_it() -> None:
    book, woken = Book(), []
    alerts = parse_payload(payload(alert("Errors", deployment="web"), alert("Slow", service="web-canary"),
                                   alert("Other", deployment="api")))
    recorded, failed = intake(book, {"web"}, woken).take(alerts)
    assert recorded == ["shop/web"] and failed == [] and woken == [("shop", "web")]
    kept = decode(book.values[("shop", "web")])
    assert [a.name for a in kept] == ["Errors", "Slow"] and all(a.received_at == 50.0 for a in kept)


def test_only_alerts_that_pass_the_release_matchers_are_recorded() -> None:
    book, woken = Book(), []
    page = ((AlertMatcher("severity", "=", "page"),),)
    alerts = parse_payload(payload(alert("Ticket", deployment="web", severity="ticket")))
    assert intake(book, {"web"}, woken, page).take(alerts) == ([], []) and book.values == {} and woken == []


def test_a_resent_alert_is_recorded_once() -> None:
    book, woken = Book(), []
    desk = intake(book, {"web"}, woken)
    for _ in range(3):
        desk.take(parse_payload(payload(alert("Errors", deployment="web"))))
    assert len(decode(book.values[("shop", "web")])) == 1


def test_one_target_that_cannot_be_recorded_does_not_lose_the_others() -> None:
    book, woken = Book(broken={"broken"}), []
    alerts = parse_payload(payload(alert("A", deployment="broken"), alert("B", deployment="web")))
    recorded, failed = intake(book, {"web"}, woken).take(alerts)
    assert recorded == ["shop/web"] and len(failed) == 1 and failed[0].startswith("shop/broken: ")
    assert woken == [("shop", "web")]


def test_the_matching_rule_follows_the_matchers_and_ignores_alerts_from_before_the_release() -> None:
    page = (AlertMatcher("severity", "=", "page"),)
    alerts = (Alert("firing", {"alertname": "Old", "severity": "page"}, received_at=10.0),
              Alert("firing", {"alertname": "Ticket", "severity": "ticket"}, received_at=30.0),
              Alert("firing", {"alertname": "Page", "severity": "page"}, {"summary": "5xx"}, received_at=30.0))
    assert firing_alert(alerts, (page,), since=20.0) == "Page (5xx)"
    assert firing_alert(alerts[:2], (page,), since=20.0) is None
    assert firing_alert(alerts[:2], (), since=20.0) == "Ticket"  # no matchers: every alert counts


def test_records_round_trip_and_garbage_reads_as_none() -> None:
    kept = (Alert("firing", {"alertname": "A"}, {"summary": "s"}, 5.0),)
    assert decode(encode(kept)) == kept
    for garbage in ("", "{", "[1, 2]", '[{"labels": 3}]', "null"):
        assert decode(garbage) == ()


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"), ({"version": "3", "alerts": []}, "version"), ({"alerts": {}}, "alerts"),
    ({"alerts": [1]}, "alerts[0]"), ({"alerts": [{"labels": {"a": 1}}]}, "alerts[0].labels"),
    ({"alerts": [{"status": "x" * 10_000}]}, "alerts[0].status"),
])
def test_malformed_payloads_name_the_field_and_echo_little(body: Any, field: str) -> None:
    with pytest.raises(PayloadError) as error:
        parse_payload(body)
    assert str(error.value).startswith(field) and len(str(error.value)) < 200


def test_targets_come_from_the_deployment_or_service_label() -> None:
    assert target_of(Alert("firing", {"namespace": "n", "service": "web-primary"})) == ("n", "web")
    assert target_of(Alert("firing", {"namespace": "n"})) is None
