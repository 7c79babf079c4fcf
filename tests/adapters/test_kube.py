"""adapters.kube on the API emulator: writes that lose a race are recomputed, not forced."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from adapters.kube import CONFLICT_ATTEMPTS, services
from tests.adapters.conftest import Cluster
from tests.adapters.routes import apex_service


def test_an_update_that_loses_a_race_is_recomputed_on_the_winners_object(cluster: Cluster) -> None:
    objects = services(cluster.api)
    objects.create(cluster.namespace, apex_service())
    calls = itertools.count()

    def add_label(current: dict[str, Any]) -> dict[str, Any]:
        if next(calls) == 0:  # someone else writes between our read and our write
            rival = objects.get(cluster.namespace, "web")
            assert rival is not None
            rival["metadata"]["labels"]["rival"] = "yes"
            objects.replace(cluster.namespace, "web", rival)
        current["metadata"]["labels"]["ours"] = "yes"
        return current

    result = objects.update(cluster.namespace, "web", add_label)

    assert result is not None
    assert result["metadata"]["labels"] == {"team": "shop", "rival": "yes", "ours": "yes"}
    assert next(calls) == 2


def test_an_update_that_keeps_losing_gives_up_with_a_conflict(cluster: Cluster) -> None:
    objects = services(cluster.api)
    objects.create(cluster.namespace, apex_service())
    rounds = itertools.count()

    def always_raced(current: dict[str, Any]) -> dict[str, Any]:
        rival = objects.get(cluster.namespace, "web")
        assert rival is not None
        rival["metadata"]["labels"]["round"] = str(next(rounds))
        objects.replace(cluster.namespace, "web", rival)
        current["metadata"]["labels"]["ours"] = "yes"
        return current

    with pytest.raises(ApiException) as raised:
        objects.update(cluster.namespace, "web", always_raced)

    assert raised.value.status == 409
    assert next(rounds) == CONFLICT_ATTEMPTS


def test_an_update_that_changes_nothing_does_not_write(cluster: Cluster) -> None:
    objects = services(cluster.api)
    created = objects.create(cluster.namespace, apex_service())

    result = objects.update(cluster.namespace, "web", lambda current: current)

    assert result is not None
    assert result["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_reading_or_deleting_what_is_not_there_is_not_an_error(cluster: Cluster) -> None:
    objects = services(cluster.api)

    assert objects.get(cluster.namespace, "missing") is None
    assert objects.delete(cluster.namespace, "missing") is False
    assert objects.update(cluster.namespace, "missing", lambda current: current) is None
