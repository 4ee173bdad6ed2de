"""The embedded default: with no database URL, camcount runs a real PostgreSQL (pgserver) itself."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

CAMCOUNT = str(Path(sys.executable).with_name("camcount"))


def test_the_run_command_works_on_the_embedded_server_and_is_idempotent(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMCOUNT_")}
    env["CAMCOUNT_HOME"] = str(tmp_path / "home")

    def demo() -> list[dict[str, object]]:
        result = subprocess.run(
            [CAMCOUNT, "demo", "--json"], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    first = demo()
    assert sorted(t["placement"] for t in first) == ["database", "pooled", "schema"]
    assert all(int(str(t["events"])) > 0 for t in first)
    second = demo()
    assert [(t["slug"], t["events"]) for t in second] == [(t["slug"], t["events"]) for t in first]

    key = tmp_path / "home" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").read_text().strip() == "16"
