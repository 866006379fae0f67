"""The Sparkplug B payload (Sparkplug 3.0 §6.4): the protobuf messages, built at import.

Only what an edge node of ours sends or reads: Payload (timestamp 1, metrics 2, seq 3) and
Metric (name 1, alias 2, timestamp 3, datatype 4, is_historical 5, is_null 7, and the values
int 10, long 11, float 12, double 13, boolean 14, string 15). Field numbers and types are the
specification's, so any Sparkplug decoder reads these messages; a decoder skips what we omit.
The classes come from a descriptor built here with protobuf's own library (no generated code).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"  # the specification's name (names never go on the wire)

# Sparkplug B data types (§6.4.16) of the metrics we send.
INT64 = 4
UINT64 = 8
DOUBLE = 10
BOOLEAN = 11
STRING = 12

_F = descriptor_pb2.FieldDescriptorProto
_METRIC_FIELDS = (
    ("name", 1, _F.TYPE_STRING, None),
    ("alias", 2, _F.TYPE_UINT64, None),
    ("timestamp", 3, _F.TYPE_UINT64, None),
    ("datatype", 4, _F.TYPE_UINT32, None),
    ("is_historical", 5, _F.TYPE_BOOL, None),
    ("is_transient", 6, _F.TYPE_BOOL, None),
    ("is_null", 7, _F.TYPE_BOOL, None),
    ("int_value", 10, _F.TYPE_UINT32, 0),
    ("long_value", 11, _F.TYPE_UINT64, 0),
    ("float_value", 12, _F.TYPE_FLOAT, 0),
    ("double_value", 13, _F.TYPE_DOUBLE, 0),
    ("boolean_value", 14, _F.TYPE_BOOL, 0),
    ("string_value", 15, _F.TYPE_STRING, 0),
    ("bytes_value", 16, _F.TYPE_BYTES, 0),
)


def _build() -> tuple[Any, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="unit_controller_sparkplug_b.proto", package=PACKAGE, syntax="proto2"
    )
    payload = file.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, oneof in _METRIC_FIELDS:
        field = metric.field.add(name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL)
        if oneof is not None:
            field.oneof_index = oneof
    payload.field.add(name="timestamp", number=1, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    payload.field.add(
        name="metrics",
        number=2,
        type=_F.TYPE_MESSAGE,
        type_name=f".{PACKAGE}.Payload.Metric",
        label=_F.LABEL_REPEATED,
    )
    payload.field.add(name="seq", number=3, type=_F.TYPE_UINT64, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="uuid", number=4, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    payload.field.add(name="body", number=5, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    payload_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.Payload")
    )
    metric_class = message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"{PACKAGE}.Payload.Metric")
    )
    return payload_class, metric_class


Payload, Metric = _build()
