"""Both SDKs against an AWS Bedrock upstream (`provider: mock_bedrock`; the mock plays Bedrock's
Converse API, `/model/{modelId}/converse` and `/converse-stream` with binary event-stream
frames, and checks every request's SigV4 signature): the gateway translates OpenAI chat
completions and Anthropic messages to Converse, signs them, and gives Bedrock's answers, errors
and streams back in each client's dialect.

Models: `bedrock` (a Claude model id), `bedrock-wrong-key` (`provider: bedrock` signing with a
secret the mock does not know), and `bedrock-fail-X` for X in conftest's BEDROCK_FAULTS.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from support import (
    ANTHROPIC_PNG_SOURCE,
    ANTHROPIC_TOOLS,
    ANTHROPIC_URL_SOURCE,
    CUT_TEXT,
    IMAGE_URL,
    OPENAI_TOOLS,
    PNG_DATA_URL,
    TIME_ARGS,
    WEATHER_ARGS,
    anthropic_image_messages,
    openai_image_messages,
    openai_stream_text,
    openai_stream_tool_calls,
    tool_result_payload,
    user,
)


# --- OpenAI SDK -> Bedrock: answers ----------------------------------------------------------


def test_openai_sdk_gets_text_and_usage_from_bedrock(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="bedrock",
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


def test_openai_sdk_streams_from_bedrock_with_usage(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="bedrock",
        messages=user("stream from bedrock please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text, finishes = openai_stream_text(chunks)
    assert text == "stream from bedrock please"
    assert finishes == ["stop"]
    # include_usage: a last chunk with no choices and the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.prompt_tokens > 0
    assert [c for c in chunks if c.usage is not None] == [last]


def test_openai_sdk_consecutive_user_messages_reach_bedrock(oai: openai.OpenAI):
    # Converse wants user and assistant turns to alternate: the gateway must join the two user
    # messages into one turn (the mock refuses a conversation that does not alternate).
    completion = oai.chat.completions.create(
        model="bedrock",
        messages=[
            {"role": "user", "content": "first part"},
            {"role": "user", "content": "second part"},
        ],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content.split() == ["first", "part", "second", "part"]


def test_openai_sdk_gets_a_tool_call_from_bedrock(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="bedrock", messages=user("weather in Paris? use get_weather"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS


def test_openai_sdk_gets_parallel_tool_calls_from_bedrock(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="bedrock", messages=user("use get_weather and get_time"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert calls[0].id and calls[1].id and calls[0].id != calls[1].id


def test_openai_sdk_streams_parallel_tool_calls_from_bedrock(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="bedrock",
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


def test_openai_sdk_tool_result_round_trip_through_bedrock(oai: openai.OpenAI):
    question = user("weather in Paris? use get_weather")
    first = oai.chat.completions.create(model="bedrock", messages=question, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    # Converse wants the tool result in a user turn, right after the assistant's toolUse, with
    # the same toolUseId: the mock refuses anything else.
    second = oai.chat.completions.create(
        model="bedrock",
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
    assert tool_result_payload(choice.message.content) == {"sky": "clear", "temp": 21}


def test_openai_sdk_base64_image_part_reaches_bedrock(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="bedrock", messages=openai_image_messages("describe this picture", PNG_DATA_URL)
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "describe this picture"
    # The mock counts 85 prompt tokens per image.
    assert completion.usage.prompt_tokens > 85


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_url_image_to_bedrock_is_a_bad_request(oai: openai.OpenAI, stream):
    # Converse takes image bytes only: an image by URL cannot be sent.
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="bedrock",
            messages=openai_image_messages("describe this picture", IMAGE_URL),
            stream=stream,
        )
    error = caught.value
    assert error.status_code == 400
    assert error.type == "invalid_request_error"
    assert error.param == "messages[0].content[1]"
    assert "URL" in error.message, error.message


# --- Anthropic SDK -> Bedrock: answers -------------------------------------------------------


def test_anthropic_sdk_gets_text_and_usage_from_bedrock(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="bedrock", max_tokens=100, system="Be brief.", messages=user("hello from anthropic")
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


def test_anthropic_sdk_streams_from_bedrock(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="bedrock", max_tokens=100, messages=user("stream from bedrock please")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "stream from bedrock please"
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "stream from bedrock please"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


def test_anthropic_sdk_gets_tool_use_from_bedrock(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="bedrock",
        max_tokens=100,
        messages=user("weather in Paris? use get_weather"),
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]
    assert tool_uses[0].id


def test_anthropic_sdk_streams_parallel_tool_use_from_bedrock(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="bedrock",
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


def test_anthropic_sdk_tool_result_round_trip_through_bedrock(claude: anthropic.Anthropic):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model="bedrock", max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model="bedrock",
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
    assert second.content[0].text == "tool result: rain"


def test_anthropic_sdk_base64_image_block_reaches_bedrock(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="bedrock",
        max_tokens=100,
        messages=anthropic_image_messages("what is this", ANTHROPIC_PNG_SOURCE),
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "what is this"
    # The mock counts 85 prompt tokens per image.
    assert message.usage.input_tokens > 85


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_url_image_to_bedrock_is_a_bad_request(claude: anthropic.Anthropic, stream):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="bedrock",
            max_tokens=100,
            messages=anthropic_image_messages("what is this", ANTHROPIC_URL_SOURCE),
            stream=stream,
        )
    error = caught.value
    assert error.status_code == 400
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "invalid_request_error"
    assert "URL" in error.body["error"]["message"], error.body


# --- a bad signature: the gateway's AWS credentials are wrong --------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_bedrock_bad_signature_is_an_authentication_error(
    oai: openai.OpenAI, stream
):
    with pytest.raises(openai.AuthenticationError) as caught:
        oai.chat.completions.create(model="bedrock-wrong-key", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 401
    assert error.type == "authentication_error"
    # Bedrock's error type is the code.
    assert error.code == "InvalidSignatureException"
    assert "signature" in error.message, error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_bedrock_bad_signature_is_an_authentication_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        claude.messages.create(
            model="bedrock-wrong-key", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 401
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "authentication_error"
    assert "signature" in error.body["error"]["message"], error.body


# --- upstream statuses -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_bedrock_rate_limit_carries_retry_after(oai: openai.OpenAI, stream):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="bedrock-fail-429", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error"
    assert error.code == "ThrottlingException"
    assert error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_bedrock_rate_limit_carries_retry_after(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(
            model="bedrock-fail-429", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_bedrock_500_is_an_internal_server_error(oai: openai.OpenAI, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="bedrock-fail-500", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 500
    assert error.message
    assert error.type == "server_error"
    assert error.code == "InternalServerException"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_bedrock_500_is_an_internal_server_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model="bedrock-fail-500", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 500
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "api_error"


# --- a stream cut midway ---------------------------------------------------------------------


def test_openai_sdk_bedrock_stream_cut_midway_raises_api_error(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="bedrock-fail-cut", messages=user(CUT_TEXT), stream=True
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
    # What came before the cut (three deltas) is still delivered.
    assert "".join(received) == "one two three"


def test_anthropic_sdk_bedrock_stream_cut_midway_raises_api_error(claude: anthropic.Anthropic):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="bedrock-fail-cut", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    # The gateway ends the stream with an `error` event, which the SDK raises.
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"
    assert "".join(received) == "one two three"


# Bedrock reports a failure inside a started stream as an exception frame
# (`modelStreamErrorException`); the mock sends it in the same write as the delta before it.
def test_openai_sdk_bedrock_exception_frame_midway_raises_api_error(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="bedrock-fail-stream_exception", messages=user(CUT_TEXT), stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert not isinstance(caught.value, openai.APIConnectionError), repr(caught.value)
    assert caught.value.body is not None and caught.value.body.get("type") == "server_error"
    assert caught.value.code == "ModelStreamErrorException"
    assert caught.value.message
    # The three deltas Bedrock sent before the exception are delivered.
    assert "".join(received) == "one two three"


def test_anthropic_sdk_bedrock_exception_frame_midway_raises_api_error(
    claude: anthropic.Anthropic,
):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="bedrock-fail-stream_exception", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"
    assert caught.value.body["error"]["message"]
    assert "".join(received) == "one two three"


# --- and afterwards -------------------------------------------------------------------------


def test_bedrock_answers_after_its_faults(oai: openai.OpenAI, claude: anthropic.Anthropic):
    faulty = [f"bedrock-fail-{fault}" for fault in ("429", "500", "cut", "stream_exception")]
    for model in [*faulty, "bedrock-wrong-key"]:
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
    completion = oai.chat.completions.create(model="bedrock", messages=user("still here"))
    assert completion.choices[0].message.content == "still here"
    message = claude.messages.create(model="bedrock", max_tokens=20, messages=user("still here"))
    assert message.content[0].text == "still here"
