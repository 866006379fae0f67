// Decodes Sparkplug B payloads with Eclipse Tahu's codec (sparkplug-payload), not ours.
// stdin: one JSON object a line, {"topic": "...", "payload": "<base64>"}, in arrival order.
// stdout: one JSON object a line, {"topic", "timestamp", "seq", "metrics": [...]}.
// As a Sparkplug host does, a DATA metric's type comes from the NBIRTH that declared its alias.
"use strict";
const readline = require("readline");
const sparkplug = require("sparkplug-payload").get("spBv1.0");
const proto = require("sparkplug-payload/lib/sparkplugPayloadProto");
const Long = require("long");

const Payload = proto.org.eclipse.tahu.protobuf.Payload;
const types = new Map(); // alias -> datatype, from the last NBIRTH

function plain(value) {
  if (Long.isLong(value)) {
    const text = value.toString();
    const number = Number(text);
    return Number.isSafeInteger(number) ? number : text;
  }
  return value;
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const { topic, payload } = JSON.parse(line);
  const bytes = Buffer.from(payload, "base64");
  let out;
  try {
    const raw = Payload.decode(bytes);
    if (topic.includes("/NBIRTH/")) {
      types.clear();
      for (const metric of raw.metrics) {
        if (metric.alias !== undefined && metric.alias !== null) {
          types.set(plain(metric.alias), metric.datatype);
        }
      }
    } else {
      for (const metric of raw.metrics) {
        if (!metric.datatype && types.has(plain(metric.alias))) {
          metric.datatype = types.get(plain(metric.alias));
        }
      }
    }
    const decoded = sparkplug.decodePayload(Payload.encode(raw).finish());
    out = {
      topic,
      timestamp: plain(decoded.timestamp),
      seq: plain(decoded.seq),
      metrics: (decoded.metrics || []).map((m) => ({
        name: m.name,
        alias: plain(m.alias),
        type: m.type,
        value: plain(m.value),
        timestamp: plain(m.timestamp),
        isHistorical: m.isHistorical === true,
      })),
    };
  } catch (error) {
    out = { topic, error: String(error) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
