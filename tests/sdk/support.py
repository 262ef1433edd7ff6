"""Request pieces the SDK tests share."""

from __future__ import annotations

import json

import openai
import pytest

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


# --- checks the per-upstream tests share (tests/sdk/test_upstreams.py and the provider files) --


def assert_openai_text_and_usage(oai, model: str):
    """A system and a user message to `model` through the OpenAI SDK come back as the echoed
    text, a `stop` finish and the usage (3 completion tokens). Returns the completion."""
    completion = oai.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello from openai"},
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.id
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "hello from openai"
    assert not choice.message.tool_calls
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens >= (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    return completion


def assert_openai_streams_with_usage(oai, model: str, prompt: str) -> None:
    """`prompt` (four words) streamed from `model` through the OpenAI SDK with include_usage:
    the text, one `stop` finish, and a last chunk with no choices that alone has the usage."""
    stream = oai.chat.completions.create(
        model=model,
        messages=user(prompt),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text, finishes = openai_stream_text(chunks)
    assert text == prompt
    assert finishes == ["stop"]
    # include_usage: a last chunk with no choices and the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.prompt_tokens > 0
    assert [c for c in chunks if c.usage is not None] == [last]


def assert_anthropic_text_and_usage(claude, model: str) -> None:
    """A system prompt and a user message to `model` through the Anthropic SDK come back as
    one text block with the echo, `end_turn` and the usage (3 output tokens)."""
    message = claude.messages.create(
        model=model, max_tokens=100, system="Be brief.", messages=user("hello from anthropic")
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


def assert_anthropic_streams(claude, model: str, prompt: str) -> None:
    """`prompt` (four words) streamed from `model` through the Anthropic SDK: the text, and a
    final message with it, `end_turn` and the usage."""
    with claude.messages.stream(model=model, max_tokens=100, messages=user(prompt)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == prompt
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == prompt
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


def assert_anthropic_error(error, kind: str) -> None:
    """`error` (an anthropic.APIStatusError) carries an Anthropic error body of type `kind`."""
    assert error.body["type"] == "error", error.body
    assert error.body["error"]["type"] == kind, error.body


def openai_stream_until_error(oai, model: str, error_class):
    """Streams CUT_TEXT from `model` through the OpenAI SDK until it raises `error_class`:
    the error and the text received before it. The error must be the gateway's own error
    chunk (a server_error body), not a broken connection."""
    stream = oai.chat.completions.create(model=model, messages=user(CUT_TEXT), stream=True)
    received = []
    with pytest.raises(error_class) as caught:
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    error = caught.value
    # The gateway ends the stream with its own error chunk, not a broken connection.
    assert not isinstance(error, openai.APIConnectionError), repr(error)
    assert error.message
    assert error.body is not None and error.body.get("type") == "server_error"
    return error, "".join(received)


def anthropic_stream_until_error(claude, model: str, error_class):
    """Streams CUT_TEXT from `model` through the Anthropic SDK until it raises `error_class`
    (the gateway's `error` event): the error and the text received before it."""
    received = []
    with pytest.raises(error_class) as caught:
        with claude.messages.stream(model=model, max_tokens=50, messages=user(CUT_TEXT)) as stream:
            for text in stream.text_stream:
                received.append(text)
    error = caught.value
    # The gateway ends the stream with an `error` event, which the SDK raises.
    assert_anthropic_error(error, "api_error")
    assert error.body["error"]["message"]
    return error, "".join(received)


def exercise_faults(oai, models) -> None:
    """Calls each of `models` through the OpenAI SDK, plain and streamed, ignoring the errors."""
    for model in models:
        for stream in (False, True):
            try:
                result = oai.chat.completions.create(
                    model=model, messages=user(CUT_TEXT), stream=stream
                )
                if stream:
                    for _ in result:
                        pass
            except openai.APIError:
                pass
