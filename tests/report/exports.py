"""Synthetic batch exports (`unit-controller/batch-export/1`) for the report's tests.

Deterministic (seeded), one trend row a second of unit time, shaped like what the journal
exports: phases with setpoints, a temperature that approaches them, pH held with noise, pumps
that dose, gaps where a reading was bad, alarms, confirmations, events and commands.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

FORMAT = "unit-controller/batch-export/1"
START_TS = 1_733_400_000_000  # 2024-12-05 12:00:00 UTC
HOSTILE = "<script>alert(1)</script>"
PUMPS = {
    "P-201": {"key": "p201", "reagent": "h2so4"},
    "P-202": {"key": "p202", "reagent": "h2o2"},
    "P-203": {"key": "p203", "reagent": "naoh"},
    "P-204": {"key": "p204", "reagent": "nh4oh"},
    "P-205": {"key": "p205", "reagent": "metal_sulfate"},
}
HASH = "3f2a9c1b4e5d6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"


@dataclass(frozen=True)
class PhaseSpec:
    """A phase to simulate: how long, its setpoints, and mL/min per pump tag while it runs."""

    name: str
    minutes: float
    temperature_sp_c: float | None = None
    temperature_tolerance_c: float | None = None
    ph_sp: float | None = None
    ph_tolerance: float | None = None
    rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AlarmSpec:
    """An alarm at a minute from the start."""

    minute: float
    id: str
    tag: str
    priority: str = "HIGH"
    message: str = "limit exceeded"


def coprecipitation_phases(co_precipitate_min: float = 120.0) -> list[PhaseSpec]:
    """The co-precipitation recipe's phases, the long one as long as asked."""
    return [
        PhaseSpec("fill", 3.3),
        PhaseSpec("heat", 25.0, 58.0, 2.0, rates={"P-204": 1300 / 15}),
        PhaseSpec("ph_adjust", 6.0, 58.0, 2.0, 11.0, 0.05, rates={"P-203": 15.0}),
        PhaseSpec(
            "co_precipitate",
            co_precipitate_min,
            58.0,
            2.0,
            11.0,
            0.05,
            rates={"P-203": 10.0, "P-204": 2.7, "P-205": 10.0},
        ),
        PhaseSpec("drain", 1.6),
        PhaseSpec("drain_heel", 1.5),
    ]


def build_export(
    *,
    phases: list[PhaseSpec],
    recipe: str = "coprecipitation",
    final_state: str | None = "COMPLETE",
    stop_after_min: float | None = None,
    detected_after_min: float | None = None,
    alarms: tuple[AlarmSpec, ...] = (),
    gaps_min: tuple[tuple[str, float, float], ...] = (),
    event_text: str | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """An export of a batch that ran `phases` (cut at stop_after_min when given).

    final_state None: still running (no end). gaps_min: (column, from, to) in minutes where
    that reading was bad (null). detected_after_min: an interrupted batch found on restart.
    """
    rng = random.Random(seed)
    total_s = sum(p.minutes for p in phases) * 60
    if stop_after_min is not None:
        total_s = min(total_s, stop_after_min * 60)
    keys = [spec["key"] for spec in PUMPS.values()]
    columns = [
        "ts",
        "state",
        "phase",
        "temperature_c",
        "temperature_sp_c",
        "ph",
        "ph_sp",
        "heater_duty",
        *(f"pump_{k}_ml_min" for k in keys),
        *(f"reagent_{k}_ml" for k in keys),
        "level_l",  # a column the report does not know: ignored
    ]
    rows: list[list[Any]] = []
    temperature, ph = 15.0, 9.6 if any(p.ph_sp for p in phases) else None
    totals = dict.fromkeys(PUMPS, 0.0)
    phase_rows: list[dict[str, Any]] = []
    t_s = 0
    boundaries = []
    elapsed = 0.0
    for p in phases:
        boundaries.append((elapsed * 60, p))
        elapsed += p.minutes
    ran: list[tuple[PhaseSpec, int, int | None]] = []
    current = 0
    phase_start = 0
    while t_s <= total_s:
        while current + 1 < len(boundaries) and t_s >= boundaries[current + 1][0]:
            ran.append((boundaries[current][1], phase_start, t_s))
            current += 1
            phase_start = t_s
        spec = boundaries[current][1]
        sp = spec.temperature_sp_c
        duty = 0.0
        if sp is not None:
            duty = min(1.0, max(0.0, (sp - temperature) / 4.0 + 0.15))
        temperature += 0.0145 * duty - (temperature - 18.0) * 0.0002 + rng.gauss(0, 0.02)
        if ph is not None:
            target = spec.ph_sp if spec.ph_sp is not None else ph
            ph += (target - ph) * 0.01 + rng.gauss(0, 0.006)
        for tag, rate in spec.rates.items():
            totals[tag] += rate / 60
        ts = START_TS + t_s * 1000
        minute = t_s / 60
        reading_t: float | None = round(temperature, 2)
        reading_ph = None if ph is None else round(ph + rng.gauss(0, 0.012), 3)
        for column, lo, hi in gaps_min:
            if lo <= minute < hi:
                if column == "temperature_c":
                    reading_t = None
                elif column == "ph":
                    reading_ph = None
        rates = {spec_["key"]: spec.rates.get(tag, 0.0) for tag, spec_ in PUMPS.items()}
        rows.append(
            [
                ts,
                "EXECUTE",
                spec.name,
                reading_t,
                sp,
                reading_ph,
                spec.ph_sp,
                round(duty, 3),
                *(rates[k] for k in keys),
                *(round(totals[tag], 1) for tag in PUMPS),
                40.0,
            ]
        )
        t_s += 1
    last_s = t_s - 1
    ended = final_state is not None and final_state != "interrupted"
    ran.append((boundaries[current][1], phase_start, last_s if ended else None))
    end_ts = START_TS + last_s * 1000 if final_state is not None else None
    for spec, start_s, end_s in ran:
        rows_in = [r for r in rows if r[2] == spec.name]
        t_values = [r[3] for r in rows_in if r[3] is not None]
        ph_values = [r[5] for r in rows_in if r[5] is not None]
        in_band = None
        if spec.ph_sp is not None and ph_values:
            in_band = sum(abs(v - spec.ph_sp) <= 0.05 for v in ph_values) / len(ph_values)
        phase_rows.append(
            {
                "name": spec.name,
                "start_ts": START_TS + start_s * 1000,
                "end_ts": None if end_s is None else START_TS + end_s * 1000,
                "temperature_sp_c": spec.temperature_sp_c,
                "temperature_tolerance_c": spec.temperature_tolerance_c,
                "ph_sp": spec.ph_sp,
                "ph_tolerance": spec.ph_tolerance,
                "t_min": min(t_values, default=None),
                "t_max": max(t_values, default=None),
                "t_mean": round(sum(t_values) / len(t_values), 2) if t_values else None,
                "ph_min": min(ph_values, default=None),
                "ph_max": max(ph_values, default=None),
                "ph_mean": round(sum(ph_values) / len(ph_values), 3) if ph_values else None,
                "ph_in_band_fraction": None if in_band is None else round(in_band, 4),
            }
        )
    alarm_rows = [
        {
            "ts": START_TS + round(a.minute * 60_000),
            "id": a.id,
            "tag": a.tag,
            "priority": a.priority,
            "message": a.message,
        }
        for a in alarms
        if a.minute * 60 <= last_s
    ]
    events = [{"ts": START_TS, "kind": "state", "text": "IDLE -> STARTING"}]
    events += [
        {"ts": p["start_ts"], "kind": "phase", "text": f"phase {p['name']}"} for p in phase_rows
    ]
    events += [
        {"ts": a["ts"], "kind": "alarm", "text": f"{a['id']} active ({a['tag']})"}
        for a in alarm_rows
    ]
    if event_text is not None:
        events.append({"ts": START_TS + 2000, "kind": "note", "text": event_text})
    if end_ts is not None and final_state != "interrupted":
        events.append({"ts": end_ts, "kind": "state", "text": f"COMPLETING -> {final_state}"})
    t_all = [r[3] for r in rows if r[3] is not None]
    max_t = max(t_all, default=None)
    sps = [p.temperature_sp_c for p in phases if p.temperature_sp_c is not None]
    overshoot = max(0.0, round(max_t - max(sps), 2)) if max_t is not None and sps else 0.0
    batch = {
        "id": 3,
        "recipe": recipe,
        "recipe_sha256": HASH,
        "start_ts": START_TS,
        "end_ts": end_ts,
        "detected_ts": None
        if detected_after_min is None
        else START_TS + round(detected_after_min * 60_000),
        "final_state": final_state,
        "reagents_ml": {tag: round(v, 1) for tag, v in totals.items() if v > 0},
        "alarms": alarm_rows,
        "max_temperature_c": max_t,
        "overshoot_c": overshoot,
        "ph_band": 0.05,
        "ph_in_band_fraction": {
            p["name"]: p["ph_in_band_fraction"]
            for p in phase_rows
            if p["ph_in_band_fraction"] is not None
        },
    }
    first = phase_rows[0]["start_ts"]
    return {
        "format": FORMAT,
        "clock": "unit",
        "unit": {"id": "unit-01", "site": "lab"},
        "pumps": PUMPS,
        "batch": batch,
        "phases": phase_rows,
        "confirmations": [
            {
                "ts": first + 95_000,
                "phase": phases[0].name,
                "prompt": "Reactor checked",
                "by": "console:tech",
            }
        ]
        if last_s > 95
        else [],
        "events": events,
        "commands": [
            {
                "ts": START_TS,
                "source": "console:tech",
                "command": "start",
                "ok": True,
                "error": None,
            },
            {
                "ts": START_TS + 1000,
                "source": "mqtt:bob",
                "command": "hold",
                "ok": False,
                "error": "remote commands act only in remote mode",
            },
        ],
        "trend": {
            "columns": columns,
            "units": {"ts": "ms", "temperature_c": "°C", "heater_duty": "fraction"},
            "rows": rows,
        },
    }


def multi_hour(co_precipitate_min: float = 120.0) -> dict[str, Any]:
    """A co-precipitation batch of some hours: pH control, alarms, gaps in both readings."""
    return build_export(
        phases=coprecipitation_phases(co_precipitate_min),
        alarms=(
            AlarmSpec(31.0, "ph_overshoot", "AT-101", "MEDIUM", "pH 11.12 above 11.05"),
            AlarmSpec(31.2, "ph_reading_bad", "AT-101", "HIGH", "pH probe answered *ER"),
            AlarmSpec(95.0, "temperature_high", "TT-101", "HIGH", "61.2 °C above 60.0 °C"),
        ),
        gaps_min=(("ph", 31.1, 32.5), ("temperature_c", 60.0, 61.0)),
    )


def heating_only() -> dict[str, Any]:
    """A heating-only batch with a few seconds of trend and no pH at all (a smoke check)."""
    return build_export(
        recipe="smoke",
        phases=[PhaseSpec("heat", 12 / 60, 30.0, 1.5)],
    )


def interrupted() -> dict[str, Any]:
    """A batch the controller stopped in (power loss): last record, then found on restart."""
    export = build_export(
        phases=coprecipitation_phases(),
        final_state="interrupted",
        stop_after_min=50.0,
        detected_after_min=72.0,
    )
    return export


def running() -> dict[str, Any]:
    """A batch still running when exported: no end, its last phase open."""
    return build_export(phases=coprecipitation_phases(), final_state=None, stop_after_min=40.0)


def hostile() -> dict[str, Any]:
    """Markup and mathtext where only text belongs: recipe name, event, alarm, phase, pump."""
    export = build_export(
        recipe=HOSTILE,
        phases=[
            PhaseSpec("heat & <hold>", 3.0, 40.0, 1.0),
            PhaseSpec("$x^2$ cost", 2.0, 40.0, 1.0, 9.5, 0.1, rates={"P-201": 2.0}),
        ],
        alarms=(AlarmSpec(1.0, "<img src=x onerror=alert(2)>", "TT-101", "HIGH", HOSTILE),),
        event_text=HOSTILE,
    )
    export["pumps"] = {**PUMPS, "P-201": {"key": "p201", "reagent": "$\\frac{1}{0}$ <b>acid</b>"}}
    export["confirmations"] = [
        {"ts": START_TS + 30_000, "phase": "heat", "prompt": HOSTILE, "by": "console:<i>x</i>"}
    ]
    return export
