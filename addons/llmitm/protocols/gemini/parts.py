"""Content parts both ways: media (inlineData, fileData), function responses and function-call arguments."""

from __future__ import annotations

import json
import mimetypes

from ..canonical import Context, Document, Image, Reasoning, Refusal, Text, ToolResult, TranslationError
from ..policy import as_dict
from .fields import typed_field

_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")


def standard_base64(data: str) -> str:
    """google-genai sends `inlineData.data` in URL-safe base64 (PROTOCOLS.md §6); OpenAI data URLs,
    Responses `input_image` and Anthropic `source.data` take the standard alphabet with padding."""
    data = data.translate(_URL_SAFE_TO_STANDARD)
    return data + "=" * (-len(data) % 4) if len(data) % 4 != 1 else data


def _media_type(d: dict, where: str) -> str | None:
    return (typed_field(d, "mimeType", "a string", where) or "").lower() or None


def inline_data_part(blob: dict, where: str) -> Image | Document:
    here = f"{where}.inlineData"
    mime = _media_type(blob, here)
    data = typed_field(blob, "data", "a string", here)
    if data is None:
        raise TranslationError(f"{here}.data: base64 data required", param=f"{here}.data")
    data = standard_base64(data)
    if mime and mime.startswith("image/"):
        return Image(media_type=mime, data=data)
    if mime and mime.startswith(("audio/", "video/")):
        raise TranslationError(f"{where}: {mime} input cannot be translated for this upstream", param=where)
    return Document(media_type=mime, data=data)


def file_data_part(fd: dict, where: str) -> Image | Document:
    here = f"{where}.fileData"
    uri = typed_field(fd, "fileUri", "a string", here)
    mime = _media_type(fd, here)
    if uri is None or not uri.startswith(("http://", "https://")) or "generativelanguage.googleapis.com" in uri:
        raise TranslationError(f"{here}: only public http(s) URLs can be translated (Files API and "
                               "gs:// URIs are readable by Gemini only)", param=where)
    if mime and mime.startswith(("audio/", "video/")):
        raise TranslationError(f"{where}: {mime} input cannot be translated for this upstream", param=where)
    if mime is None:
        mime = mimetypes.guess_type(uri.partition("?")[0])[0]
    if mime and mime.startswith("image/"):
        return Image(url=uri)
    return Document(media_type=mime, url=uri)


def function_response_content(response, parts, where: str, ctx: Context) -> tuple[list, bool]:
    """functionResponse.response (+ multimodal parts) → ToolResult content and is_error."""
    content: list = []
    is_error = False
    if isinstance(response, dict):
        keys = set(response)
        if keys == {"error"}:
            is_error = True
            value = response["error"]
        elif keys in ({"result"}, {"output"}, {"content"}):
            value = next(iter(response.values()))
        else:
            value = response
        if value is not None:
            content.append(Text(value if isinstance(value, str) else json.dumps(value)))
    elif response is not None:
        content.append(Text(json.dumps(response)))
    for k, p in enumerate(parts if isinstance(parts, list) else []):
        here = f"{where}.parts[{k}]"
        blob = typed_field(as_dict(p), "inlineData", "an object", here)
        if blob is not None:
            content.append(inline_data_part(blob, here))
        else:
            ctx.warn("functionResponse part without inlineData dropped")
    return content, is_error


def merge_adjacent(parts: list, join_text: bool = True) -> list:
    """Streams stored as history arrive as many small parts: join neighbouring text and thought parts
    (a thought part carrying only a signature belongs to the thought text before it). A user's separate
    text parts stay separate (`join_text` False)."""
    out: list = []
    for p in parts:
        last = out[-1] if out else None
        if join_text and type(p) is Text and type(last) is Text:
            out[-1] = Text(last.text + p.text)
        elif type(p) is Reasoning and type(last) is Reasoning and last.redacted is None and p.redacted is None \
                and not last.signature:
            out[-1] = Reasoning(last.text + p.text, p.signature)
        else:
            out.append(p)
    return out


def render_function_response(result: ToolResult, name: str, gemini_id: str | None, ctx: Context) -> tuple[dict, list]:
    texts = [p.text for p in result.content if isinstance(p, (Text, Refusal))]
    media = []
    for p in result.content:
        if isinstance(p, (Image, Document)) and (p.data is not None or p.url or getattr(p, "text", None) is not None):
            if isinstance(p, Document) and p.text is not None:
                texts.append(p.text)
            else:
                media.append(p)
    text = "\n".join(texts)
    if result.is_error:
        response: dict = {"error": text}
    else:
        try:
            value = json.loads(text) if text.strip().startswith("{") else None
        except ValueError:
            value = None
        response = value if isinstance(value, dict) else {"result": text}
    fr: dict = {"name": name, "response": response}
    if gemini_id:
        fr["id"] = gemini_id
    return {"functionResponse": fr}, media


def render_media(p: Image | Document, where: str, ctx: Context) -> dict:
    if isinstance(p, Image) and p.detail not in (None, "auto"):
        ctx.warn(f"image detail {p.detail!r} dropped (Gemini has no per-image detail)")
    if isinstance(p, Document) and p.text is not None:
        return {"text": p.text}
    if p.data is not None:
        mime = p.media_type or ("image/png" if isinstance(p, Image) else "application/pdf")
        return {"inlineData": {"mimeType": mime, "data": p.data}}
    url = p.url or ""
    mime = p.media_type or mimetypes.guess_type(url.partition("?")[0])[0] or (
        "image/jpeg" if isinstance(p, Image) else "application/pdf")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def args_object(arguments: str, ctx: Context) -> dict:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        ctx.warn("tool call with invalid JSON arguments sent as {} (arguments were not valid JSON)")
        return {}
    return value if isinstance(value, dict) else {"value": value}

