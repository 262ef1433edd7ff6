"""Request pieces the SDK tests share."""

from __future__ import annotations

import json

# A 1x1 transparent PNG.
PNG_1X1_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

PNG_DATA_URL = f"data:image/png;base64,{PNG_1X1_B64}"
# An image by URL, for upstreams that fetch it (or refuse it: Bedrock takes bytes only).
IMAGE_URL = "https://example.com/cat.png"

# A prompt the `fail=cut` models (`cut_after=3`) answer with three words before the break.
CUT_TEXT = "one two three four five six seven"

# The mock answers a tool result turn with `tool result: <the result>` (a JSON result compact).
TOOL_RESULT_PREFIX = "tool result: "

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TIME_SCHEMA = {
    "type": "object",
    "properties": {"zone": {"type": "string"}, "offset": {"type": "integer"}},
    "required": ["zone", "offset"],
}
# What the mock passes as arguments for the schemas above.
WEATHER_ARGS = {"city": "mock"}
TIME_ARGS = {"zone": "mock", "offset": 1}

OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.", "parameters": WEATHER_SCHEMA}},
    {"type": "function", "function": {"name": "get_time", "description": "Time in a zone.", "parameters": TIME_SCHEMA}},
]
ANTHROPIC_TOOLS = [
    {"name": "get_weather", "description": "Weather in a city.", "input_schema": WEATHER_SCHEMA},
    {"name": "get_time", "description": "Time in a zone.", "input_schema": TIME_SCHEMA},
]

PERSON_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "age", "tags"],
            "additionalProperties": False,
        },
    },
}


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def openai_image_messages(text: str, url: str) -> list[dict]:
    """A user message with `text` and an image part (`url`: a data URL or an http one)."""
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def anthropic_image_messages(text: str, source: dict) -> list[dict]:
    """A user message with an image block (`source`) and `text`."""
    return [
        {
            "role": "user",
            "content": [{"type": "image", "source": source}, {"type": "text", "text": text}],
        }
    ]


ANTHROPIC_PNG_SOURCE = {"type": "base64", "media_type": "image/png", "data": PNG_1X1_B64}
ANTHROPIC_URL_SOURCE = {"type": "url", "url": IMAGE_URL}


def tool_result_payload(text: str | None) -> object:
    """The JSON result the mock saw, from its `tool result: <compact JSON>` answer."""
    assert text and text.startswith(TOOL_RESULT_PREFIX), text
    return json.loads(text[len(TOOL_RESULT_PREFIX) :])


def openai_stream_text(chunks) -> tuple[str, list]:
    """The streamed text of choice 0 and the finish reasons seen."""
    text, finishes = "", []
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return text, finishes


def assert_person(content: str | None) -> None:
    """`content` is JSON matching PERSON_FORMAT's schema."""
    assert content, "no content"
    person = json.loads(content)
    assert isinstance(person, dict), person
    assert set(person) >= {"name", "age", "tags"}, person
    assert isinstance(person["name"], str), person
    assert isinstance(person["age"], int) and not isinstance(person["age"], bool), person
    assert isinstance(person["tags"], list) and all(isinstance(t, str) for t in person["tags"]), person


def openai_stream_tool_calls(chunks) -> tuple[dict[int, dict], list]:
    """Accumulates streamed OpenAI tool call deltas by index, as a client must:
    `{index: {"id", "name", "arguments"}}`, plus the finish reasons seen."""
    calls: dict[int, dict] = {}
    finishes = []
    for chunk in chunks:
        for choice in chunk.choices:
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                if delta.id:
                    call["id"] = delta.id
                if delta.function is not None:
                    if delta.function.name:
                        call["name"] += delta.function.name
                    if delta.function.arguments:
                        call["arguments"] += delta.function.arguments
    return calls, finishes
