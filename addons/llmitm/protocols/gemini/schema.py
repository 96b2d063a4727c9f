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


# Where a JSON Schema holds subschemas: maps of them, lists of them, and single ones.
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "not", "additionalProperties", "contains", "if", "then", "else")


def _lower_type(value):
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [t.lower() if isinstance(t, str) else t for t in value]
    return value


def _is_object(node: dict) -> bool:
    t = node.get("type")
    return t == "object" or (isinstance(t, list) and "object" in t) or ("type" not in node and "properties" in node)


def standard_json_schema(schema, *, close_objects: bool) -> tuple[object, bool]:
    """A JSON Schema from a Gemini client → one every JSON Schema upstream accepts, and whether it is
    ready for OpenAI's strict mode. Gemini CLI writes `responseJsonSchema` with Gemini's upper-case type
    names (`"OBJECT"`, PROTOCOLS.md §6): they become lower-case. With `close_objects` (response formats:
    OpenAI strict mode and Anthropic structured outputs reject an object schema without it) every object
    without its own `additionalProperties` gets `additionalProperties: false`; the schema is strict-ready
    when, besides, every object requires all of its properties (else it goes upstream as not strict)."""
    strict_ready = True

    def walk(node):
        nonlocal strict_ready
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out: dict = {}
        for key, value in node.items():
            if key == "type":
                out[key] = _lower_type(value)
            elif key in _SUBSCHEMA_MAPS and isinstance(value, dict):
                out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key in _SUBSCHEMA_LISTS or key in _SUBSCHEMA_ONE:
                out[key] = walk(value)
            else:
                out[key] = value
        if _is_object(out):
            if close_objects:
                out.setdefault("additionalProperties", False)
            properties = out.get("properties") if isinstance(out.get("properties"), dict) else {}
            required = out.get("required") if isinstance(out.get("required"), list) else []
            if out.get("additionalProperties") is not False or set(properties) - set(required):
                strict_ready = False
        return out

    return walk(schema), strict_ready
