"""Both SDKs against a Google Vertex AI upstream (`provider: mock_vertex`): the gateway signs a
JWT with the service account in `credentials_file`, trades it for an OAuth access token at the
mock's token endpoint, and sends Gemini's `generateContent` / `streamGenerateContent?alt=sse`
under `projects/{project}/locations/{location}/publishers/google/models/{model}` with that
token (the mock refuses any token it did not issue). OpenAI chat completions and Anthropic
messages are translated to Gemini and Gemini's answers, errors and streams back.

Models: `vertex` (the echo, in `europe-west4`) and `vertex-fail-X` for X in conftest's
VERTEX_FAULTS (in the default `us-central1`).
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from support import (
    ANTHROPIC_PNG_SOURCE,
    ANTHROPIC_TOOLS,
    CUT_TEXT,
    OPENAI_TOOLS,
    PERSON_FORMAT,
    PNG_DATA_URL,
    TIME_ARGS,
    WEATHER_ARGS,
    anthropic_image_messages,
    assert_person,
    openai_image_messages,
    openai_stream_text,
    openai_stream_tool_calls,
    tool_result_payload,
    user,
)


# --- OpenAI SDK -> Vertex AI: answers --------------------------------------------------------


def test_openai_sdk_gets_text_and_usage_from_vertex(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="vertex",
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


def test_openai_sdk_streams_from_vertex_with_usage(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="vertex",
        messages=user("stream from vertex please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text, finishes = openai_stream_text(chunks)
    assert text == "stream from vertex please"
    assert finishes == ["stop"]
    # include_usage: a last chunk with no choices and the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.prompt_tokens > 0
    assert [c for c in chunks if c.usage is not None] == [last]


def test_openai_sdk_gets_a_tool_call_from_vertex(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="vertex", messages=user("weather in Paris? use get_weather"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS


def test_openai_sdk_gets_parallel_tool_calls_from_vertex(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="vertex", messages=user("use get_weather and get_time"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert calls[0].id and calls[1].id and calls[0].id != calls[1].id


def test_openai_sdk_streams_parallel_tool_calls_from_vertex(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="vertex",
        messages=user("use get_weather and get_time"),
        tools=OPENAI_TOOLS,
        stream=True,
    )
    calls, finishes = openai_stream_tool_calls(stream)

    assert finishes == ["tool_calls"]
    assert sorted(calls) == [0, 1]
    assert (calls[0]["name"], json.loads(calls[0]["arguments"])) == ("get_weather", WEATHER_ARGS)
    assert (calls[1]["name"], json.loads(calls[1]["arguments"])) == ("get_time", TIME_ARGS)
    assert calls[0]["id"] and calls[1]["id"] and calls[0]["id"] != calls[1]["id"]


def test_openai_sdk_tool_result_round_trip_through_vertex(oai: openai.OpenAI):
    question = user("weather in Paris? use get_weather")
    first = oai.chat.completions.create(model="vertex", messages=question, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    # Gemini pairs a result with its call by function name, which the tool message lacks: the
    # gateway must find it through the assistant message's tool call id.
    second = oai.chat.completions.create(
        model="vertex",
        tools=OPENAI_TOOLS,
        messages=[
            *question,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "clear", "temp": 21}'},
        ],
    )
    choice = second.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    # A JSON object result is the function's response as it is.
    assert tool_result_payload(choice.message.content) == {"sky": "clear", "temp": 21}


def test_openai_sdk_json_schema_through_vertex(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="vertex", messages=user("a person please"), response_format=PERSON_FORMAT
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert_person(choice.message.content)


def test_openai_sdk_streamed_json_schema_through_vertex(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="vertex", messages=user("a person please"), response_format=PERSON_FORMAT, stream=True
    )
    chunks = list(stream)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    text, finishes = openai_stream_text(chunks)
    assert finishes == ["stop"]
    assert_person(text)


def test_openai_sdk_image_part_reaches_vertex(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="vertex", messages=openai_image_messages("describe this picture", PNG_DATA_URL)
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "describe this picture"
    # The mock counts 85 prompt tokens per image.
    assert completion.usage.prompt_tokens > 85


# --- Anthropic SDK -> Vertex AI: answers -----------------------------------------------------


def test_anthropic_sdk_gets_text_and_usage_from_vertex(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="vertex", max_tokens=100, system="Be brief.", messages=user("hello from anthropic")
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


def test_anthropic_sdk_streams_from_vertex(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="vertex", max_tokens=100, messages=user("stream from vertex please")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "stream from vertex please"
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "stream from vertex please"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


def test_anthropic_sdk_gets_tool_use_from_vertex(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="vertex",
        max_tokens=100,
        messages=user("weather in Paris? use get_weather"),
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]
    assert tool_uses[0].id


def test_anthropic_sdk_streams_parallel_tool_use_from_vertex(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="vertex",
        max_tokens=100,
        messages=user("use get_weather and get_time"),
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    tool_uses = [block for block in final.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert tool_uses[0].id and tool_uses[1].id and tool_uses[0].id != tool_uses[1].id


def test_anthropic_sdk_tool_result_round_trip_through_vertex(claude: anthropic.Anthropic):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model="vertex", max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model="vertex",
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[
            *question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "rain"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"]
    # A plain-text result reaches Gemini wrapped in an object; the text is in it.
    payload = tool_result_payload(second.content[0].text)
    assert isinstance(payload, dict) and "rain" in payload.values(), payload


def test_anthropic_sdk_image_block_reaches_vertex(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="vertex",
        max_tokens=100,
        messages=anthropic_image_messages("what is this", ANTHROPIC_PNG_SOURCE),
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "what is this"
    # The mock counts 85 prompt tokens per image.
    assert message.usage.input_tokens > 85


# --- the access token: fetched once, then reused ---------------------------------------------


def test_vertex_answers_several_calls_in_a_row(oai: openai.OpenAI, claude: anthropic.Anthropic):
    # Each call needs a token the mock issued and that has not expired; the gateway keeps the
    # one it got (valid for an hour) for the calls after, whichever dialect and mode they use.
    for i in range(4):
        completion = oai.chat.completions.create(model="vertex", messages=user(f"call {i}"))
        assert completion.choices[0].message.content == f"call {i}"
        message = claude.messages.create(model="vertex", max_tokens=20, messages=user(f"call {i}"))
        assert message.content[0].text == f"call {i}"
    text, finishes = openai_stream_text(
        oai.chat.completions.create(model="vertex", messages=user("streamed call"), stream=True)
    )
    assert (text, finishes) == ("streamed call", ["stop"])
    with claude.messages.stream(
        model="vertex", max_tokens=20, messages=user("streamed call")
    ) as stream:
        assert "".join(stream.text_stream) == "streamed call"


# --- upstream statuses -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_vertex_rate_limit_carries_retry_after(oai: openai.OpenAI, stream):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="vertex-fail-429", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error"
    assert error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_vertex_rate_limit_carries_retry_after(claude: anthropic.Anthropic, stream):
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(
            model="vertex-fail-429", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_vertex_500_is_an_internal_server_error(oai: openai.OpenAI, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="vertex-fail-500", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 500
    assert error.message
    assert error.type == "server_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_vertex_500_is_an_internal_server_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model="vertex-fail-500", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 500
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "api_error"


# --- a stream cut midway ---------------------------------------------------------------------


def test_openai_sdk_vertex_stream_cut_midway_raises_api_error(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="vertex-fail-cut", messages=user(CUT_TEXT), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    # The gateway ends the stream with its own error chunk, not a broken connection.
    assert not isinstance(caught.value, openai.APIConnectionError), repr(caught.value)
    assert caught.value.message
    assert caught.value.body is not None and caught.value.body.get("type") == "server_error"
    # What came before the cut (three chunks) is still delivered.
    assert "".join(received) == "one two three"


def test_anthropic_sdk_vertex_stream_cut_midway_raises_api_error(claude: anthropic.Anthropic):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="vertex-fail-cut", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    # The gateway ends the stream with an `error` event, which the SDK raises.
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"
    assert caught.value.body["error"]["message"]
    assert "".join(received) == "one two three"


# --- and afterwards -------------------------------------------------------------------------


def test_vertex_answers_after_its_faults(oai: openai.OpenAI, claude: anthropic.Anthropic):
    for fault in ("429", "500", "cut"):
        for stream in (False, True):
            try:
                result = oai.chat.completions.create(
                    model=f"vertex-fail-{fault}", messages=user(CUT_TEXT), stream=stream
                )
                if stream:
                    for _ in result:
                        pass
            except openai.APIError:
                pass
    completion = oai.chat.completions.create(model="vertex", messages=user("still here"))
    assert completion.choices[0].message.content == "still here"
    message = claude.messages.create(model="vertex", max_tokens=20, messages=user("still here"))
    assert message.content[0].text == "still here"
