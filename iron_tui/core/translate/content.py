"""OpenAI message content parts → Anthropic content blocks (text, images, files; cache_control kept), for
the request translation (request.py)."""

from __future__ import annotations

from typing import Any

from iron_tui.core.bounded_json import nesting_exceeds
from iron_tui.core.translate.errors import TranslationError
from iron_tui.core.translate.params import unsupported

_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def with_cache_control(block: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    cache_control = source.get("cache_control")
    if cache_control and isinstance(cache_control, dict) and not nesting_exceeds(cache_control, 4):
        block["cache_control"] = cache_control
    return block


def _image_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise TranslationError("image_url part needs a 'url'", param, "invalid_value")
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64":
            raise TranslationError("image data URIs must be base64-encoded", param, "invalid_value")
        if media_type not in _IMAGE_TYPES:
            raise TranslationError(
                f"image type '{media_type}' is not supported by Claude (use jpeg, png, gif or webp)",
                param,
                "unsupported_value",
            )
        source: dict[str, Any] = {"type": "base64", "media_type": media_type, "data": data}
    elif url.startswith(("http://", "https://")):
        # Anthropic fetches the URL itself; the proxy never downloads anything on a client's behalf.
        source = {"type": "url", "url": url}
    else:
        raise TranslationError("image URLs must be http(s) or base64 data URIs", param, "invalid_value")
    return with_cache_control({"type": "image", "source": source}, part)


def _file_block(part: dict[str, Any], param: str) -> dict[str, Any]:
    # OpenAI `file` parts carry either an uploaded file id (unreachable from Anthropic) or inline data.
    file = part.get("file")
    data = file.get("file_data") if isinstance(file, dict) else None
    if isinstance(data, str) and data.startswith("data:application/pdf;base64,"):
        source = {
            "type": "base64",
            "media_type": "application/pdf",
            "data": data[len("data:application/pdf;base64,") :],
        }
        return with_cache_control({"type": "document", "source": source}, part)
    raise TranslationError(
        "only inline PDF file parts (file_data as a base64 data URI) can be sent to Claude",
        param,
        "unsupported_value",
    )


def content_blocks(content: object, param: str, *, allow_media: bool) -> list[dict[str, Any]]:
    """Anthropic blocks for an OpenAI message `content` (string or list of parts).

    Empty and whitespace-only text is dropped: Anthropic answers 400 "text content blocks must contain
    non-whitespace text".
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise TranslationError("message content must be a string or a list of parts", param, "invalid_type")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        part_param = f"{param}[{j}]"
        if isinstance(part, str):  # tolerated: some clients send bare strings in the parts list
            if part.strip():
                blocks.append({"type": "text", "text": part})
            continue
        if not isinstance(part, dict):
            raise TranslationError("content parts must be objects", part_param, "invalid_type")
        kind = part.get("type")
        if kind == "text" or kind == "refusal":
            text = part.get(kind)
            if not isinstance(text, str):
                raise TranslationError(f"{kind} part needs a string '{kind}'", part_param, "invalid_type")
            if text.strip():
                blocks.append(with_cache_control({"type": "text", "text": text}, part))
        elif kind == "image_url" and allow_media:
            blocks.append(_image_block(part, part_param))
        elif kind == "file" and allow_media:
            blocks.append(_file_block(part, part_param))
        elif kind == "input_audio":
            raise unsupported(part_param, "Claude models do not accept audio input")
        else:
            raise TranslationError(
                f"content part type '{kind}' is not supported here", part_param, "unsupported_value"
            )
    return blocks
