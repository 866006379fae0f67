"""Sparkplug B on the broker (Sparkplug 3.0): the unit is an edge node of group `group`.

NBIRTH (seq 0) declares every metric with its alias, type and current value; NDATA carries them
by alias with their own timestamps (`is_historical` when replayed from the outbox); NDEATH, the
Last Will, carries the connection's bdSeq. Events, command results and the alarm list ride as
String metrics holding the JSON of the README's topics. An NCMD writes `Node Control/Rebirth`
or a `Command/<name>` metric whose string is the same command envelope as `cmd/<name>`, so the
same gate checks it: authority, signature, expiry, replay.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from google.protobuf.message import DecodeError

from hal.log import get_logger
from unit_controller.mqtt.commands import MAX_PAYLOAD_BYTES
from unit_controller.mqtt.legacy import flatten_v1_telemetry, is_v1_telemetry
from unit_controller.mqtt.outbox import OutboxRow
from unit_controller.mqtt.payloads import Metric as TelemetryMetric
from unit_controller.mqtt.sparkplug.schema import BOOLEAN, DOUBLE, INT64, STRING, UINT64, Payload
from unit_controller.mqtt.wire import Incoming, Publication

log = get_logger(__name__)

NAMESPACE = "spBv1.0"
BD_SEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"
ALARMS = "Unit/alarms"
EVENT = "Unit/event"
CMD_RESULT = "Unit/cmd_result"
COMMAND_PREFIX = "Command/"
# An NCMD carries a command or two and a rebirth. Each metric is carried out (or refused, each
# refusal an event and a cmd_result) within the scan: one NCMD of 40,000 metrics stood the
# scan still for 4 s and overflowed the journal. Beyond these it is refused whole, unread.
MAX_NCMD_METRICS = 8
MAX_NCMD_BYTES = MAX_NCMD_METRICS * (MAX_PAYLOAD_BYTES + 256)
# Sparkplug ids are one topic level: no '/', and no MQTT wildcard.
ID_PATTERN = re.compile(r"^[^/+#]+$")
_TYPES = {"int": INT64, "float": DOUBLE, "bool": BOOLEAN, "string": STRING}
_U64 = (1 << 64) - 1


def _set_value(metric: Any, datatype: int, value: Any) -> None:
    """`value` into the metric's field for `datatype`; None as is_null."""
    if value is None:
        metric.is_null = True
    elif datatype == BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype == DOUBLE:
        metric.double_value = float(value)
    elif datatype in (INT64, UINT64):
        metric.long_value = int(value) & _U64  # Int64 as two's complement (§6.4.16)
    else:
        metric.string_value = value if isinstance(value, str) else json.dumps(value)


class SparkplugWire:
    """The unit as Sparkplug B edge node `node` of group `group`."""

    def __init__(
        self,
        *,
        group: str,
        node: str,
        metrics: Sequence[TelemetryMetric],
        latest: Callable[[], Mapping[str, Any] | None],
        alarms: Callable[[], bytes],
        commands: Iterable[str],
        wall: Callable[[], float] = time.time,
    ) -> None:
        for what, value in (("group", group), ("edge node", node)):
            if not ID_PATTERN.match(value):
                raise ValueError(f"Sparkplug {what} id {value!r} may not contain '/', '+', '#'")
        base = f"{NAMESPACE}/{group}"
        self._nbirth = f"{base}/NBIRTH/{node}"
        self._ndata = f"{base}/NDATA/{node}"
        self._ndeath = f"{base}/NDEATH/{node}"
        self._ncmd = f"{base}/NCMD/{node}"
        self._latest = latest
        self._alarms = alarms
        self._wall = wall
        # Aliases: telemetry in its order from 1, then ours; fixed for the process.
        names = [
            *((m.name, _TYPES[m.type]) for m in metrics),
            (ALARMS, STRING),
            (EVENT, STRING),
            (CMD_RESULT, STRING),
            *((f"{COMMAND_PREFIX}{c}", STRING) for c in sorted(commands)),
        ]
        self._alias = {name: alias for alias, (name, _) in enumerate(names, start=1)}
        self._type = dict(names)
        self._telemetry = [m.name for m in metrics]
        self._by_alias = {alias: name for name, alias in self._alias.items()}
        self._bd_seq = -1  # the next connect attempt's will makes it 0
        self._seq = 0

    # --- what the link asks for ----------------------------------------------------------
    @property
    def command_filter(self) -> str:
        """This node's NCMD topic."""
        return self._ncmd

    @property
    def bd_seq(self) -> int:
        """The current connection's birth/death sequence number."""
        return max(0, self._bd_seq)

    def will(self) -> Publication:
        """NDEATH with a new bdSeq (one per connect attempt, §7.2.1), QoS 1, not retained."""
        self._bd_seq = (self._bd_seq + 1) % 256
        return Publication(self._ndeath, self._death(), qos=1, retain=False)

    def announce(self, session: int) -> list[Publication]:
        """NBIRTH: seq 0, bdSeq, Rebirth, every metric with alias, type and current value."""
        now = self._now_ms()
        payload = Payload(timestamp=now, seq=0)
        self._seq = 0
        self._add(payload, BD_SEQ, UINT64, self.bd_seq, now, alias=False)
        self._add(payload, REBIRTH, BOOLEAN, False, now, alias=False)
        latest = self._latest() or {}
        ts = latest.get("ts", now)
        for name in self._telemetry:
            self._add(payload, name, self._type[name], latest.get(name), ts, named=True)
        self._add(payload, ALARMS, STRING, self._alarms().decode(), now, named=True)
        for name in (EVENT, CMD_RESULT):
            self._add(payload, name, STRING, None, now, named=True)
        for name in self._alias:
            if name.startswith(COMMAND_PREFIX):
                self._add(payload, name, STRING, "", now, named=True)
        return [Publication(self._nbirth, payload.SerializeToString(), qos=0)]

    def alarms_update(self) -> Publication:
        """NDATA with the alarm list."""
        payload = self._data_payload()
        self._add(payload, ALARMS, STRING, self._alarms().decode(), payload.timestamp)
        return Publication(self._ndata, payload.SerializeToString(), qos=0)

    def stored(self, row: OutboxRow, *, backfill: bool) -> tuple[str, OutboxRow, int]:
        """NDATA of a telemetry message, event or command result, by alias."""
        payload = self._data_payload()
        raw = row.payload
        if row.kind == "telemetry":
            if is_v1_telemetry(raw):
                raw = flatten_v1_telemetry(raw)
            try:
                message = json.loads(raw)
            except ValueError:
                message = {}
            ts = message.get("ts", row.created_ms) if isinstance(message, dict) else 0
            for name in self._telemetry:
                if isinstance(message, dict) and name in message:
                    self._add(
                        payload, name, self._type[name], message[name], ts, historical=backfill
                    )
        else:
            name = CMD_RESULT if row.kind == "cmd_result" else EVENT
            self._add(payload, name, STRING, raw.decode(errors="replace"), row.created_ms,
                      historical=backfill)  # fmt: skip
        return self._ndata, replace(row, payload=payload.SerializeToString()), 0

    def incoming(self, topic: str, payload: bytes, *, retained: bool) -> list[Incoming]:
        """An NCMD's commands and rebirth, in order; each metric that is neither is refused
        (a cmd_result says why), as is an NCMD that does not decode."""
        if topic != self._ncmd:
            return []
        if len(payload) > MAX_NCMD_BYTES:
            log.warning("sparkplug.ncmd_too_large", bytes=len(payload))
            return [
                Incoming(
                    "NCMD",
                    b"",
                    retained,
                    error=f"the NCMD is {len(payload)} bytes; at most {MAX_NCMD_BYTES} (nothing "
                    "in it was carried out)",
                )
            ]
        message = Payload()
        try:
            message.ParseFromString(payload)
        except DecodeError as exc:
            log.warning("sparkplug.ncmd_invalid", reason=str(exc), bytes=len(payload))
            return [
                Incoming(
                    "NCMD",
                    b"",
                    retained,
                    error=f"the NCMD is not a Sparkplug B payload ({len(payload)} bytes): {exc}",
                )
            ]
        if len(message.metrics) > MAX_NCMD_METRICS:
            log.warning("sparkplug.ncmd_too_many", metrics=len(message.metrics))
            return [
                Incoming(
                    "NCMD",
                    b"",
                    retained,
                    error=f"the NCMD carries {len(message.metrics)} metrics; at most "
                    f"{MAX_NCMD_METRICS} (nothing in it was carried out)",
                )
            ]
        found: list[Incoming] = []
        for metric in message.metrics:
            name = metric.name or self._by_alias.get(metric.alias, "")
            shown = (name or f"alias {metric.alias}")[:64]
            value = metric.WhichOneof("value")
            if name == REBIRTH:
                if value == "boolean_value" and metric.boolean_value:
                    found.append(Incoming(name, b"", retained, rebirth=True))
                elif value != "boolean_value":
                    found.append(Incoming(name, b"", retained, error=f"{name} must be a Boolean"))
            elif name.startswith(COMMAND_PREFIX):
                command = name.removeprefix(COMMAND_PREFIX)
                if value == "string_value":
                    found.append(Incoming(command, metric.string_value.encode(), retained))
                else:
                    found.append(
                        Incoming(
                            command,
                            b"",
                            retained,
                            error=f"{shown} must be a String metric holding the command's JSON "
                            f"(got {value or 'no value'})",
                        )
                    )
            else:
                log.warning("sparkplug.ncmd_ignored", metric=shown)
                found.append(
                    Incoming(
                        shown,
                        b"",
                        retained,
                        error=f"{shown} cannot be written: an NCMD takes "
                        f"{COMMAND_PREFIX}<name> (String) and {REBIRTH} (Boolean)",
                    )
                )
        return found

    def offline(self) -> Publication:
        """NDEATH of this connection's bdSeq, said before a clean disconnect."""
        return Publication(self._ndeath, self._death(), qos=1, retain=False)

    # --- encoding ------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return round(self._wall() * 1000)

    def _death(self) -> bytes:
        payload = Payload(timestamp=self._now_ms())
        self._add(payload, BD_SEQ, UINT64, self.bd_seq, payload.timestamp, alias=False)
        return bytes(payload.SerializeToString())

    def _data_payload(self) -> Any:
        self._seq = (self._seq + 1) % 256
        return Payload(timestamp=self._now_ms(), seq=self._seq)

    def _add(
        self,
        payload: Any,
        name: str,
        datatype: int,
        value: Any,
        ts: Any,
        *,
        named: bool = False,
        alias: bool = True,
        historical: bool = False,
    ) -> None:
        metric = payload.metrics.add()
        if named or not alias:
            metric.name = name
        if alias:
            metric.alias = self._alias[name]
        if named or not alias:
            metric.datatype = datatype
        if isinstance(ts, int) and not isinstance(ts, bool) and ts >= 0:
            metric.timestamp = ts
        if historical:
            metric.is_historical = True
        _set_value(metric, datatype, value)
