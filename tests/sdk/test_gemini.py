"""Both SDKs against a Gemini upstream (`provider: gemini`; the mock plays Gemini's
`generateContent` and `streamGenerateContent?alt=sse`): the gateway translates OpenAI chat
completions and Anthropic messages to Gemini and Gemini's answers, errors and stream back.

Models: `gemini` (the echo) and `gemini-fail-X` for X in conftest's GEMINI_FAULTS.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from support import (
    ANTHROPIC_TOOLS,
    CUT_TEXT,
    OPENAI_TOOLS,
    PERSON_FORMAT,
    PNG_1X1_B64,
    TIME_ARGS,
    WEATHER_ARGS,
    assert_person,
    openai_stream_tool_calls,
    tool_result_payload,
    user,
)


# --- OpenAI SDK -> Gemini upstream: answers --------------------------------------------------


def test_openai_sdk_gets_text_and_usage_from_gemini(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gemini",
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


def test_openai_sdk_streams_from_gemini_with_usage(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gemini",
        messages=user("stream from gemini please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream from gemini please"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    # include_usage: a last chunk with no choices and the usage.
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.prompt_tokens > 0
    assert [c for c in chunks if c.usage is not None] == [last]


def test_openai_sdk_gets_a_tool_call_from_gemini(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gemini", messages=user("weather in Paris? use get_weather"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS


def test_openai_sdk_gets_parallel_tool_calls_from_gemini(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gemini", messages=user("use get_weather and get_time"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert calls[0].id and calls[1].id and calls[0].id != calls[1].id


def test_openai_sdk_streams_parallel_tool_calls_from_gemini(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gemini",
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


def test_openai_sdk_tool_result_round_trip_through_gemini(oai: openai.OpenAI):
    question = user("weather in Paris? use get_weather")
    first = oai.chat.completions.create(model="gemini", messages=question, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    # Gemini pairs a result with its call by function name, which the tool message lacks: the
    # gateway must find it through the assistant message's tool call id.
    second = oai.chat.completions.create(
        model="gemini",
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


def test_openai_sdk_json_schema_through_gemini(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gemini", messages=user("a person please"), response_format=PERSON_FORMAT
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    assert_person(choice.message.content)


def test_openai_sdk_streamed_json_schema_through_gemini(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gemini", messages=user("a person please"), response_format=PERSON_FORMAT, stream=True
    )
    chunks = list(stream)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert_person("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))


def test_openai_sdk_image_part_reaches_gemini(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gemini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe this picture"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_1X1_B64}"}},
                ],
            }
        ],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content == "describe this picture"
    assert completion.usage.prompt_tokens > 0


# --- Anthropic SDK -> Gemini upstream: answers -----------------------------------------------


def test_anthropic_sdk_gets_text_and_usage_from_gemini(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="gemini", max_tokens=100, system="Be brief.", messages=user("hello from anthropic")
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "hello from anthropic"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


def test_anthropic_sdk_streams_from_gemini(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="gemini", max_tokens=100, messages=user("stream from gemini please")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "stream from gemini please"
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "stream from gemini please"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


def test_anthropic_sdk_gets_tool_use_from_gemini(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="gemini",
        max_tokens=100,
        messages=user("weather in Paris? use get_weather"),
        tools=ANTHROPIC_TOOLS,
    )
    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]
    assert tool_uses[0].id


def test_anthropic_sdk_streams_parallel_tool_use_from_gemini(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="gemini",
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


def test_anthropic_sdk_tool_result_round_trip_through_gemini(claude: anthropic.Anthropic):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model="gemini", max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model="gemini",
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


def test_anthropic_sdk_image_block_reaches_gemini(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="gemini",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1_B64},
                    },
                    {"type": "text", "text": "what is this"},
                ],
            }
        ],
    )
    assert message.stop_reason == "end_turn"
    assert message.content[0].text == "what is this"
    assert message.usage.input_tokens > 0


# --- content filter: an answer withheld (SAFETY) ---------------------------------------------


def test_openai_sdk_safety_is_a_content_filter_finish(oai: openai.OpenAI):
    completion = oai.chat.completions.create(model="gemini-fail-safety", messages=user("x"))
    choice = completion.choices[0]
    assert choice.finish_reason == "content_filter"
    assert not choice.message.content
    assert not choice.message.tool_calls


def test_openai_sdk_streamed_safety_is_a_content_filter_finish(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gemini-fail-safety", messages=user("x"), stream=True
    )
    chunks = list(stream)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["content_filter"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""


def test_anthropic_sdk_safety_is_a_refusal(claude: anthropic.Anthropic):
    message = claude.messages.create(model="gemini-fail-safety", max_tokens=10, messages=user("x"))
    assert message.type == "message"
    assert message.stop_reason == "refusal"
    assert not any(block.type == "text" and block.text for block in message.content)


def test_anthropic_sdk_streamed_safety_is_a_refusal(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="gemini-fail-safety", max_tokens=10, messages=user("x")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ""
    assert final.stop_reason == "refusal"


# --- a prompt refused (promptFeedback.blockReason SAFETY): 400 ----------------------------


def test_openai_sdk_blocked_prompt_is_a_bad_request(oai: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gemini-fail-blocked", messages=user("x"))
    error = caught.value
    assert error.status_code == 400
    assert isinstance(error.body, dict) and error.body.get("type"), error.body
    assert "SAFETY" in error.message, error.message


def test_anthropic_sdk_blocked_prompt_is_a_bad_request(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="gemini-fail-blocked", max_tokens=10, messages=user("x"))
    error = caught.value
    assert error.status_code == 400
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "invalid_request_error"
    assert "SAFETY" in error.body["error"]["message"], error.body


def test_openai_sdk_streamed_blocked_prompt_is_a_bad_request(oai: openai.OpenAI):
    # Gemini streams a refusal as a 200 whose only event has no candidates: the gateway reads it
    # before answering and gives the client the same 400 as without streaming.
    with pytest.raises(openai.BadRequestError) as caught:
        for _ in oai.chat.completions.create(
            model="gemini-fail-blocked", messages=user("x"), stream=True
        ):
            pass
    error = caught.value
    assert error.status_code == 400
    assert "SAFETY" in error.message, error.message


def test_anthropic_sdk_streamed_blocked_prompt_is_a_bad_request(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.BadRequestError) as caught:
        with claude.messages.stream(
            model="gemini-fail-blocked", max_tokens=10, messages=user("x")
        ) as stream:
            stream.get_final_message()
    error = caught.value
    assert error.status_code == 400
    assert error.body["type"] == "error", error.body
    assert error.body["error"]["type"] == "invalid_request_error", error.body
    assert "SAFETY" in error.body["error"]["message"], error.body


# --- upstream statuses -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_gemini_rate_limit_carries_retry_after(oai: openai.OpenAI, stream):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="gemini-fail-429", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.type == "rate_limit_error"
    assert error.message


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_gemini_rate_limit_carries_retry_after(claude: anthropic.Anthropic, stream):
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(
            model="gemini-fail-429", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_gemini_500_is_an_internal_server_error(oai: openai.OpenAI, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="gemini-fail-500", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 500
    assert error.message
    assert isinstance(error.body, dict) and error.body.get("type"), error.body


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_gemini_500_is_an_internal_server_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model="gemini-fail-500", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 500
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "api_error"


# --- a stream cut midway ---------------------------------------------------------------------


def test_openai_sdk_gemini_stream_cut_midway_raises_api_error(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gemini-fail-cut", messages=user(CUT_TEXT), stream=True
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


def test_anthropic_sdk_gemini_stream_cut_midway_raises_api_error(claude: anthropic.Anthropic):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model="gemini-fail-cut", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    # The gateway ends the stream with an `error` event, which the SDK raises.
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"
    assert "".join(received) == "one two three"


# --- and afterwards -------------------------------------------------------------------------


def test_gemini_answers_after_its_faults(oai: openai.OpenAI, claude: anthropic.Anthropic):
    for fault in ("429", "500", "safety", "blocked", "cut"):
        for stream in (False, True):
            try:
                result = oai.chat.completions.create(
                    model=f"gemini-fail-{fault}", messages=user(CUT_TEXT), stream=stream
                )
                if stream:
                    for _ in result:
                        pass
            except openai.APIError:
                pass
    completion = oai.chat.completions.create(model="gemini", messages=user("still here"))
    assert completion.choices[0].message.content == "still here"
    message = claude.messages.create(model="gemini", max_tokens=20, messages=user("still here"))
    assert message.content[0].text == "still here"
