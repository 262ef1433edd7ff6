"""Both SDKs against each translated upstream the mock plays: Gemini (`provider: gemini`),
Google Vertex AI (`provider: mock_vertex`), AWS Bedrock's Converse API (`provider:
mock_bedrock`) and Azure OpenAI (`provider: azure`). The gateway translates OpenAI chat
completions and Anthropic messages to each upstream and its answers, errors and streams back;
every behaviour here is written once and run against every upstream (the pytest parameter).

What only one upstream does (Gemini's safety refusals, Vertex's token reuse, Bedrock's
signatures, image bytes and exception frames, Azure's content filter and auth variants) is in
test_gemini.py, test_vertex.py, test_bedrock.py and test_azure.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anthropic
import openai
import pytest

from conftest import AZURE_FAULTS, BEDROCK_FAULTS, GEMINI_FAULTS, VERTEX_FAULTS
from support import (
    ANTHROPIC_PNG_SOURCE,
    ANTHROPIC_TOOLS,
    ANTHROPIC_URL_SOURCE,
    IMAGE_URL,
    OPENAI_TOOLS,
    PERSON_FORMAT,
    PNG_DATA_URL,
    TIME_ARGS,
    WEATHER_ARGS,
    anthropic_image_messages,
    anthropic_stream_until_error,
    assert_anthropic_error,
    assert_anthropic_streams,
    assert_anthropic_text_and_usage,
    assert_openai_streams_with_usage,
    assert_openai_text_and_usage,
    assert_person,
    exercise_faults,
    openai_image_messages,
    openai_stream_text,
    openai_stream_tool_calls,
    openai_stream_until_error,
    tool_result_payload,
    user,
)


@dataclass(frozen=True)
class Upstream:
    """One upstream as conftest configures it, and what the tests expect of it."""

    name: str
    # The echo model, and the `{name}-fail-X` models for X in `faults`.
    model: str
    faults: list[str]
    # Further models that fail (a refused key, a bad signature), for the recovery test.
    failing_models: tuple[str, ...] = ()
    # Gemini (and Vertex) take a function response as an object: a plain-text tool result
    # reaches them wrapped in one. Others echo it as it is.
    wraps_text_tool_results: bool = False
    # The prompt tokens an image must at least add (the mock counts 85 per image for Vertex
    # and Bedrock), and whether the upstream takes an image by URL.
    image_prompt_tokens_over: int = 0
    takes_image_urls: bool = False
    # The upstream's own error codes for a 429 and a 500, passed on to an OpenAI client.
    rate_limit_code: str | None = None
    server_error_code: str | None = None

    def fault(self, fault: str) -> str:
        assert fault in self.faults, (self.name, fault)
        return f"{self.name}-fail-{fault}"


GEMINI = Upstream("gemini", "gemini", GEMINI_FAULTS, wraps_text_tool_results=True)
VERTEX = Upstream(
    "vertex", "vertex", VERTEX_FAULTS, wraps_text_tool_results=True, image_prompt_tokens_over=85
)
BEDROCK = Upstream(
    "bedrock",
    "bedrock",
    BEDROCK_FAULTS,
    failing_models=("bedrock-wrong-key",),
    image_prompt_tokens_over=85,
    rate_limit_code="ThrottlingException",
    server_error_code="InternalServerException",
)
AZURE = Upstream("azure", "azure", AZURE_FAULTS, takes_image_urls=True)

ALL = [pytest.param(u, id=u.name) for u in (GEMINI, VERTEX, BEDROCK, AZURE)]
# Upstreams with a native structured-output mode the gateway maps json_schema to.
JSON_SCHEMA = [pytest.param(u, id=u.name) for u in (GEMINI, VERTEX)]
# Each upstream with a base64 image, and those that take one by URL with that too.
IMAGES = [
    pytest.param(u, kind, id=f"{u.name}-{kind}")
    for u in (GEMINI, VERTEX, BEDROCK, AZURE)
    for kind in (["base64", "url"] if u.takes_image_urls else ["base64"])
]
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


# --- OpenAI SDK: answers ---------------------------------------------------------------------


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_gets_text_and_usage_from_upstream(oai: openai.OpenAI, up: Upstream):
    assert_openai_text_and_usage(oai, up.model)


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_streams_from_upstream_with_usage(oai: openai.OpenAI, up: Upstream):
    assert_openai_streams_with_usage(oai, up.model, f"stream from {up.name} please")


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_gets_a_tool_call_from_upstream(oai: openai.OpenAI, up: Upstream):
    completion = oai.chat.completions.create(
        model=up.model, messages=user("weather in Paris? use get_weather"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_gets_parallel_tool_calls_from_upstream(oai: openai.OpenAI, up: Upstream):
    completion = oai.chat.completions.create(
        model=up.model, messages=user("use get_weather and get_time"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert calls[0].id and calls[1].id and calls[0].id != calls[1].id


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_streams_parallel_tool_calls_from_upstream(oai: openai.OpenAI, up: Upstream):
    stream = oai.chat.completions.create(
        model=up.model,
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


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_tool_result_round_trip_through_upstream(oai: openai.OpenAI, up: Upstream):
    question = user("weather in Paris? use get_weather")
    first = oai.chat.completions.create(model=up.model, messages=question, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    # Gemini pairs a result with its call by function name, which the tool message lacks: the
    # gateway must find it through the assistant message's tool call id. Converse wants the
    # result in a user turn right after the assistant's toolUse, with the same toolUseId.
    second = oai.chat.completions.create(
        model=up.model,
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


@pytest.mark.parametrize("up", JSON_SCHEMA)
def test_openai_sdk_json_schema_through_upstream(oai: openai.OpenAI, up: Upstream):
    completion = oai.chat.completions.create(
        model=up.model, messages=user("a person please"), response_format=PERSON_FORMAT
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert_person(choice.message.content)


@pytest.mark.parametrize("up", JSON_SCHEMA)
def test_openai_sdk_streamed_json_schema_through_upstream(oai: openai.OpenAI, up: Upstream):
    stream = oai.chat.completions.create(
        model=up.model, messages=user("a person please"), response_format=PERSON_FORMAT, stream=True
    )
    chunks = list(stream)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    text, finishes = openai_stream_text(chunks)
    assert finishes == ["stop"]
    assert_person(text)


@pytest.mark.parametrize("up, kind", IMAGES)
def test_openai_sdk_image_part_reaches_upstream(oai: openai.OpenAI, up: Upstream, kind):
    url = {"base64": PNG_DATA_URL, "url": IMAGE_URL}[kind]
    completion = oai.chat.completions.create(
        model=up.model, messages=openai_image_messages("describe this picture", url)
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "describe this picture"
    assert completion.usage.prompt_tokens > up.image_prompt_tokens_over


# --- Anthropic SDK: answers ------------------------------------------------------------------


@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_gets_text_and_usage_from_upstream(claude: anthropic.Anthropic, up: Upstream):
    assert_anthropic_text_and_usage(claude, up.model)


@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_streams_from_upstream(claude: anthropic.Anthropic, up: Upstream):
    assert_anthropic_streams(claude, up.model, f"stream from {up.name} please")


@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_gets_tool_use_from_upstream(claude: anthropic.Anthropic, up: Upstream):
    message = claude.messages.create(
        model=up.model,
        max_tokens=100,
        messages=user("weather in Paris? use get_weather"),
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]
    assert tool_uses[0].id


@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_streams_parallel_tool_use_from_upstream(
    claude: anthropic.Anthropic, up: Upstream
):
    with claude.messages.stream(
        model=up.model,
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


@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_tool_result_round_trip_through_upstream(
    claude: anthropic.Anthropic, up: Upstream
):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model=up.model, max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model=up.model,
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
    if up.wraps_text_tool_results:
        # A plain-text result reaches Gemini wrapped in an object; the text is in it.
        payload = tool_result_payload(second.content[0].text)
        assert isinstance(payload, dict) and "rain" in payload.values(), payload
    else:
        assert second.content[0].text == "tool result: rain"


@pytest.mark.parametrize("up, kind", IMAGES)
def test_anthropic_sdk_image_block_reaches_upstream(
    claude: anthropic.Anthropic, up: Upstream, kind
):
    source = {"base64": ANTHROPIC_PNG_SOURCE, "url": ANTHROPIC_URL_SOURCE}[kind]
    message = claude.messages.create(
        model=up.model, max_tokens=100, messages=anthropic_image_messages("what is this", source)
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "what is this"
    assert message.usage.input_tokens > up.image_prompt_tokens_over


# --- upstream statuses -----------------------------------------------------------------------


@STREAM
@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_upstream_rate_limit_carries_retry_after(
    oai: openai.OpenAI, up: Upstream, stream
):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model=up.fault("429"), messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error"
    if up.rate_limit_code is not None:
        assert error.code == up.rate_limit_code
    assert error.message


@STREAM
@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_upstream_rate_limit_carries_retry_after(
    claude: anthropic.Anthropic, up: Upstream, stream
):
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(
            model=up.fault("429"), max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert_anthropic_error(error, "rate_limit_error")


@STREAM
@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_upstream_500_is_an_internal_server_error(
    oai: openai.OpenAI, up: Upstream, stream
):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model=up.fault("500"), messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 500
    assert error.message
    assert isinstance(error.body, dict) and error.body.get("type"), error.body
    assert error.type == "server_error"
    if up.server_error_code is not None:
        assert error.code == up.server_error_code


@STREAM
@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_upstream_500_is_an_internal_server_error(
    claude: anthropic.Anthropic, up: Upstream, stream
):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model=up.fault("500"), max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 500
    assert_anthropic_error(error, "api_error")


# --- a stream cut midway ---------------------------------------------------------------------


@pytest.mark.parametrize("up", ALL)
def test_openai_sdk_upstream_stream_cut_midway_raises_api_error(oai: openai.OpenAI, up: Upstream):
    _, received = openai_stream_until_error(oai, up.fault("cut"), openai.APIError)
    # What came before the cut (three chunks) is still delivered.
    assert received == "one two three"


@pytest.mark.parametrize("up", ALL)
def test_anthropic_sdk_upstream_stream_cut_midway_raises_api_error(
    claude: anthropic.Anthropic, up: Upstream
):
    _, received = anthropic_stream_until_error(claude, up.fault("cut"), anthropic.APIStatusError)
    assert received == "one two three"


# --- and afterwards -------------------------------------------------------------------------


@pytest.mark.parametrize("up", ALL)
def test_upstream_answers_after_its_faults(
    oai: openai.OpenAI, claude: anthropic.Anthropic, up: Upstream
):
    exercise_faults(oai, [*(up.fault(f) for f in up.faults), *up.failing_models])
    completion = oai.chat.completions.create(model=up.model, messages=user("still here"))
    assert completion.choices[0].message.content == "still here"
    message = claude.messages.create(model=up.model, max_tokens=20, messages=user("still here"))
    assert message.content[0].text == "still here"
