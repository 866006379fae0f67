"""The link loads aiomqtt and paho without what paho imports and never uses (urllib.request with
http.client and email: ~3 MB of every unit that publishes), and that module still works for
anything that reads it. Each in a fresh interpreter, as a unit's daemon is."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.test_lean_imports import ROOT

NEVER_LOADED_BY_THE_LINK = ("http", "email", "tempfile")


def _run(code: str) -> dict[str, object]:
    script = textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_link_tries_the_broker_without_loading_urllib_request_http_or_email(
    tmp_path: Path,
) -> None:
    script = """
        import asyncio, json, sys
        from pathlib import Path
        from unit_controller.mqtt.link import FleetLink
        from unit_controller.mqtt.outbox import Outbox
        from unit_controller.mqtt.settings import MqttSettings
        from unit_controller.mqtt.topics import Topics
        directory = DIRECTORY

        async def refuse(name, payload, retained):
            raise AssertionError("no broker, no command")

        async def main():
            # Port 1: nobody listens, so paho runs its whole connect path and is refused.
            settings = MqttSettings(url="mqtt://127.0.0.1:1", reconnect_min_s=0.05,
                                    reconnect_max_s=0.1)
            async with Outbox(path=Path(directory) / "o.sqlite3", max_bytes=10**6,
                              max_age_s=60) as outbox:
                link = FleetLink(settings=settings, topics=Topics(root="t", unit="u"),
                                 client_id="u", outbox=outbox, birth=lambda s: b"{}",
                                 alarms=lambda: b"[]", on_command=refuse)
                task = asyncio.create_task(link.run())
                while not link.tried:
                    await asyncio.sleep(0.01)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return link.connects

        connects = asyncio.run(main())
        print(json.dumps({"connects": connects, "modules": sorted(sys.modules)}))
        """
    result = _run(script.replace("DIRECTORY", repr(str(tmp_path))))
    modules = set(result["modules"])  # type: ignore[call-overload]
    assert result["connects"] == 0
    assert "paho.mqtt.client" in modules
    loaded = sorted(
        m for m in modules if any(m == p or m.startswith(p + ".") for p in NEVER_LOADED_BY_THE_LINK)
    )
    assert loaded == []


def test_a_deferred_module_loads_whole_at_its_first_use() -> None:
    result = _run(
        """
        import json, sys, types
        from unit_controller.mqtt.paho_imports import defer_unused_imports
        deferred = defer_unused_imports()
        again = defer_unused_imports()
        import urllib.request
        before = "http.client" in sys.modules
        proxies = urllib.request.getproxies()  # what paho reads when PySocks is installed
        from urllib.request import Request
        real = type(sys.modules["urllib.request"]) is types.ModuleType
        print(json.dumps({
            "deferred": deferred, "again": again, "before": before, "real": real,
            "proxies": isinstance(proxies, dict), "bound": urllib.request.Request is Request,
            "after": "http.client" in sys.modules,
        }))
        """
    )
    assert result == {
        "deferred": ["urllib.request"],
        "again": [],
        "before": False,
        "real": True,
        "proxies": True,
        "bound": True,
        "after": True,
    }


def test_nothing_is_deferred_once_the_module_is_loaded() -> None:
    result = _run(
        """
        import json, urllib.request
        from unit_controller.mqtt.paho_imports import defer_unused_imports
        print(json.dumps({"deferred": defer_unused_imports()}))
        """
    )
    assert result == {"deferred": []}
