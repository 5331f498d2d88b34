"""``bench/logins.py --quick`` runs, prints one JSON object with the documented keys, and its
counts add up: every login completed or abandoned, the time of each login split between the
relying party, the OP and the driver for rpkit and for Authlib, abandoned transactions expire,
and nothing is left in the stores once everything expired and was swept. Timing is not
checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "logins.py"
KEYS = {
    "rpkit_ms_per_login",
    "rpkit_op_ms_per_login",
    "rpkit_driver_ms_per_login",
    "authlib_ms_per_login",
    "authlib_op_ms_per_login",
    "authlib_driver_ms_per_login",
    "rpkit_over_authlib",
    "rpkit_over_authlib_end_to_end",
    "compared_logins",
    "kib_per_abandoned_login_after_sweeps",
    "abandoned_plateau",
    "targets",
    "targets_met",
    "completed_logins",
    "abandoned_logins",
    "abandoned_rounds",
    "logins_per_s",
    "rp_logins_per_s",
    "op_share",
    "ms_per_login",
    "rss_kib",
    "kib_per_completed_login",
    "kib_per_abandoned_login_kept_without_sweep",
    "flows_entries",
    "sessions_entries",
    "expired_entries_removed_without_sweep",
    "checkpoints",
    "driver",
    "stores",
}


def test_the_quick_login_benchmark_prints_counts_that_add_up():
    run = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]

    result = json.loads(run.stdout)

    assert result.keys() >= KEYS
    assert result["completed_logins"] == 200
    assert result["abandoned_logins"] == sum(result["abandoned_rounds"]) == 200
    assert result["logins_per_s"] > 0
    assert result["rp_logins_per_s"] >= result["logins_per_s"]
    assert 0 < result["op_share"] < 1
    compared = result["compared_logins"]["each"]
    assert compared == 200
    for side in ("rpkit", "authlib"):
        parts = [result[f"{side}_{part}ms_per_login"] for part in ("", "op_", "driver_")]
        assert all(part > 0 for part in parts)
        assert sum(parts) == pytest.approx(result[f"{side}_wall_ms_per_login"], abs=0.01)
    assert result["rpkit_over_authlib"] > 0
    flows, sessions = result["flows_entries"], result["sessions_entries"]
    first, second = result["abandoned_rounds"][:2]
    # A completed login leaves nothing in the flows store; an abandoned one a transaction and
    # its browser's pending-login list, until they expire and are swept.
    assert flows["after_completed"] == 0
    assert flows["after_round_1"] == 2 * first
    assert flows["after_round_2_without_sweep"] == 2 * (first + second)
    assert flows["after_sweeps"] == [0, 0, 0]
    # A session and its sid index entry per rpkit login, warm-up and comparison included, plus
    # one sub index entry.
    assert sessions["after_completed"] == 2 * (200 + 20 + compared) + 1
    assert sessions["final"] == 0
    checkpoints = result["checkpoints"]
    assert checkpoints[-1]["completed"] == 200
    assert checkpoints[-1]["abandoned"] == 200
    assert all(point["rss_kib"] > 0 for point in checkpoints)
    assert [p["abandoned"] for p in checkpoints] == sorted(p["abandoned"] for p in checkpoints)
