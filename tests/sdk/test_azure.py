"""Both SDKs against an Azure OpenAI upstream (`provider: azure`; the mock plays Azure's
`/openai/deployments/{deployment}/chat/completions?api-version=…` and the v1 API's
`/openai/v1/chat/completions`): the gateway sends OpenAI chat completions to a deployment, with
Azure's auth, and gives Azure's answers, errors and streams back in each client's dialect.

Models: `azure` (`api-key` auth, the dated API), `azure-bearer` (an Entra ID token, a chosen
API version), `azure-v1` (the v1 API), `azure-wrong-key` (a key Azure refuses), and
`azure-fail-X` for X in conftest's AZURE_FAULTS.
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

# The ways to reach a deployment: api-key with the default API version, Entra ID bearer with
# a chosen one, the v1 API.
AZURE_MODELS = ["azure", "azure-bearer", "azure-v1"]


# --- OpenAI SDK -> Azure: answers ------------------------------------------------------------


@pytest.mark.parametrize("model", AZURE_MODELS)
def test_openai_sdk_gets_text_usage_and_filter_results_from_azure(oai: openai.OpenAI, model):
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
    # Azure's content-filter annotations reach an OpenAI client as they are.
    filters = (choice.model_extra or {}).get("content_filter_results")
    assert filters is not None, choice
    assert filters["hate"] == {"filtered": False, "severity": "safe"}
    prompt_filters = (completion.model_extra or {}).get("prompt_filter_results")
    assert prompt_filters and prompt_filters[0]["prompt_index"] == 0, completion


@pytest.mark.parametrize("model", AZURE_MODELS)
def test_openai_sdk_streams_from_azure_with_usage(oai: openai.OpenAI, model):
    stream = oai.chat.completions.create(
        model=model,
        messages=user("stream from azure please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text, finishes = openai_stream_text(chunks)
    assert text == "stream from azure please"
    assert finishes == ["stop"]
    # include_usage: a last chunk with no choices and the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.prompt_tokens > 0
    assert [c for c in chunks if c.usage is not None] == [last]


def test_openai_sdk_gets_a_tool_call_from_azure(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="azure", messages=user("weather in Paris? use get_weather"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS


def test_openai_sdk_gets_parallel_tool_calls_from_azure(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="azure", messages=user("use get_weather and get_time"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert calls[0].id and calls[1].id and calls[0].id != calls[1].id


def test_openai_sdk_streams_parallel_tool_calls_from_azure(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="azure",
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


def test_openai_sdk_tool_result_round_trip_through_azure(oai: openai.OpenAI):
    question = user("weather in Paris? use get_weather")
    first = oai.chat.completions.create(model="azure", messages=question, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    second = oai.chat.completions.create(
        model="azure",
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


@pytest.mark.parametrize("url", [PNG_DATA_URL, IMAGE_URL], ids=["base64", "url"])
def test_openai_sdk_image_part_reaches_azure(oai: openai.OpenAI, url):
    completion = oai.chat.completions.create(
        model="azure", messages=openai_image_messages("describe this picture", url)
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "describe this picture"
    assert completion.usage.prompt_tokens > 0


# --- Anthropic SDK -> Azure: answers ---------------------------------------------------------


@pytest.mark.parametrize("model", AZURE_MODELS)
def test_anthropic_sdk_gets_text_and_usage_from_azure(claude: anthropic.Anthropic, model):
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


@pytest.mark.parametrize("model", AZURE_MODELS)
def test_anthropic_sdk_streams_from_azure(claude: anthropic.Anthropic, model):
    with claude.messages.stream(
        model=model, max_tokens=100, messages=user("stream from azure please")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "stream from azure please"
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "stream from azure please"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


def test_anthropic_sdk_gets_tool_use_from_azure(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="azure",
        max_tokens=100,
        messages=user("weather in Paris? use get_weather"),
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]
    assert tool_uses[0].id


def test_anthropic_sdk_streams_parallel_tool_use_from_azure(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="azure",
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


def test_anthropic_sdk_tool_result_round_trip_through_azure(claude: anthropic.Anthropic):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model="azure", max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model="azure",
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


@pytest.mark.parametrize(
    "source", [ANTHROPIC_PNG_SOURCE, ANTHROPIC_URL_SOURCE], ids=["base64", "url"]
)
def test_anthropic_sdk_image_block_reaches_azure(claude: anthropic.Anthropic, source):
    message = claude.messages.create(
        model="azure", max_tokens=100, messages=anthropic_image_messages("what is this", source)
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "what is this"
    assert message.usage.input_tokens > 0


# --- Azure's content filter: a prompt refused (400 content_filter) ---------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_azure_content_filter_is_a_bad_request(oai: openai.OpenAI, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="azure-fail-content_filter", messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 400
    assert error.code == "content_filter"
    assert "content management policy" in error.message, error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_azure_content_filter_is_a_bad_request(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="azure-fail-content_filter", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 400
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "invalid_request_error"
    assert "content management policy" in error.body["error"]["message"], error.body


# --- upstream statuses -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_azure_refused_key_is_an_authentication_error(oai: openai.OpenAI, stream):
    with pytest.raises(openai.AuthenticationError) as caught:
        oai.chat.completions.create(model="azure-wrong-key", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 401
    assert error.type == "authentication_error"
    assert error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_azure_refused_key_is_an_authentication_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        claude.messages.create(
            model="azure-wrong-key", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 401
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "authentication_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_azure_rate_limit_carries_retry_after(oai: openai.OpenAI, stream):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="azure-fail-429", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error"
    assert error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_azure_rate_limit_carries_retry_after(claude: anthropic.Anthropic, stream):
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(
            model="azure-fail-429", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_azure_500_is_an_internal_server_error(oai: openai.OpenAI, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="azure-fail-500", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 500
    assert error.message
    assert isinstance(error.body, dict) and error.body.get("type"), error.body


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_azure_500_is_an_internal_server_error(claude: anthropic.Anthropic, stream):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model="azure-fail-500", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 500
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "api_error"


# --- a stream cut midway ---------------------------------------------------------------------


def test_openai_sdk_azure_stream_cut_midway_raises_api_error(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="azure-fail-cut", messages=user(CUT_TEXT), stream=True
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


def test_anthropic_sdk_azure_stream_cut_midway_raises_api_error(claude: anthropic.Anthropic):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="azure-fail-cut", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    # The gateway ends the stream with an `error` event, which the SDK raises.
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"
    assert "".join(received) == "one two three"


# --- and afterwards -------------------------------------------------------------------------


def test_azure_answers_after_its_faults(oai: openai.OpenAI, claude: anthropic.Anthropic):
    for fault in ("429", "500", "content_filter", "cut"):
        for stream in (False, True):
            try:
                result = oai.chat.completions.create(
                    model=f"azure-fail-{fault}", messages=user(CUT_TEXT), stream=stream
                )
                if stream:
                    for _ in result:
                        pass
            except openai.APIError:
                pass
    completion = oai.chat.completions.create(model="azure", messages=user("still here"))
    assert completion.choices[0].message.content == "still here"
    message = claude.messages.create(model="azure", max_tokens=20, messages=user("still here"))
    assert message.content[0].text == "still here"
