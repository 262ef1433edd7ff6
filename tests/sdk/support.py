"""Request pieces the SDK tests share."""

from __future__ import annotations

import json

# A 1x1 transparent PNG.
PNG_1X1_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

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
