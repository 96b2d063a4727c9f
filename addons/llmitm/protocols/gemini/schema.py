"""Gemini's OpenAPI-subset `Schema` and JSON Schema."""

from __future__ import annotations

from .fields import camel_keys, get_field

_OPENAPI_DROP = {"propertyOrdering", "property_ordering", "example", "nullable"}


def openapi_to_json_schema(schema):
    """Gemini's OpenAPI-subset `Schema` (type "OBJECT", `nullable`, …) → JSON Schema."""
    if isinstance(schema, list):
        return [openapi_to_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict = {}
    for key, value in schema.items():
        camel = next(iter(camel_keys({key: None})))
        if key in _OPENAPI_DROP:
            continue
        if camel == "type" and isinstance(value, str):
            out["type"] = value.lower() if value != "TYPE_UNSPECIFIED" else None
            if out["type"] is None:
                del out["type"]
        elif camel == "properties" and isinstance(value, dict):
            out["properties"] = {k: openapi_to_json_schema(v) for k, v in value.items()}
        elif camel in ("items", "anyOf", "additionalProperties", "not"):
            out[camel] = openapi_to_json_schema(value)
        elif camel in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties") \
                and isinstance(value, str) and value.isdigit():
            out[camel] = int(value)  # int64 fields arrive as strings in proto JSON
        else:
            out[camel] = value
    if get_field(schema, "nullable") is True:
        t = out.get("type")
        if isinstance(t, str):
            out["type"] = [t, "null"]
        elif t is None and "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out
