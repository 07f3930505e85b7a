"""Heavy use (issue 16 §2): 1,000 concurrent clients mixing reads and commits for 30 s get no
5xx, and `/health` answers within a second throughout and right after. The mix and the
client loop are `bench/load.py`'s (which also reports throughput and p99 per level); this
long variant runs with `-m slow` or ATRIUM_RUN_SLOW=1."""

from __future__ import annotations

import asyncio
import random
import secrets

import pytest

from bench.load import LARGE, recovery, run, workload
from tests.hub.readkit import make_repo, new_owner
from tests.live import LiveServer

CLIENTS = 1000
SECONDS = 30.0


@pytest.mark.slow
def test_a_thousand_clients_get_no_5xx_and_health_stays_fast(server: LiveServer) -> None:
    owner = new_owner(server)
    name = f"load-{secrets.token_hex(3)}"
    files = {"config.json": b'{"model_type": "bert"}', "README.md": b"# load\n"}
    make_repo(owner, name, files, {"weights.bin": random.Random(0).randbytes(LARGE)})
    repo_id = f"{owner.name}/{name}"
    tally = asyncio.run(run(server.url, workload(owner, repo_id), CLIENTS, SECONDS))
    assert tally.answered > 0
    fives = {status: n for status, n in tally.statuses.items() if status >= 500}
    assert not fives, f"5xx answers under load: {fives}"
    assert tally.health_ms and max(tally.health_ms) < 1000, max(tally.health_ms or [0])
    assert asyncio.run(recovery(server.url, repo_id, owner.token)) < 1.0
