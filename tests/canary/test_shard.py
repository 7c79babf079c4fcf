"""`--shard i/n`: every release belongs to exactly one of n controllers, spread evenly, stably."""

from __future__ import annotations

import pytest

from canary.controller import Shard


def test_every_release_has_exactly_one_shard_and_shards_are_balanced() -> None:
    shards = [Shard(i, 10) for i in range(10)]
    keys = [(f"ns-{i % 7}", f"app-{i}") for i in range(10_000)]
    owners = [[s.index for s in shards if s.owns(key)] for key in keys]
    assert all(len(found) == 1 for found in owners)
    sizes = [sum(1 for found in owners if found == [i]) for i in range(10)]
    assert min(sizes) > 850 and max(sizes) < 1150  # 1,000 each, within a few percent
    assert [Shard(i, 10).owns(keys[0]) for i in range(10)] == [s.owns(keys[0]) for s in shards]  # stable


def test_one_shard_owns_everything() -> None:
    assert Shard(0, 1).owns(("any", "thing"))


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1/0", "x/2"])
def test_a_bad_shard_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Shard.parse(text)
