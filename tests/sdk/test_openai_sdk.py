"""The official `openai` SDK against the gateway, with an OpenAI-format upstream (`gpt`)."""

from __future__ import annotations

import json

import openai

from support import (
    OPENAI_TOOLS,
    PERSON_FORMAT,
    PNG_1X1_B64,
    TIME_ARGS,
    WEATHER_ARGS,
    assert_person,
    openai_stream_tool_calls,
    user,
)


def test_chat_completion_returns_the_echo_with_usage(oai: openai.OpenAI):
    completion = oai.chat.completions.create(model="gpt", messages=user("hello there friend"))

    assert completion.object == "chat.completion"
    assert completion.model
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "hello there friend"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_system_and_earlier_turns_are_accepted_and_the_last_user_turn_is_answered(
    oai: openai.OpenAI,
):
    completion = oai.chat.completions.create(
        model="gpt",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "second question"},
        ],
        temperature=0.2,
        max_tokens=50,
    )
    assert completion.choices[0].message.content == "second question"


def test_streamed_deltas_join_to_the_echo(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gpt", messages=user("one two three four"), stream=True
    )
    chunks = list(stream)

    assert chunks, "no chunks"
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    text = "".join(
        chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices
    )
    assert text == "one two three four"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert all(chunk.usage is None for chunk in chunks)


def test_stream_with_include_usage_ends_with_a_usage_chunk(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gpt",
        messages=user("one two three"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 3
    assert last.usage.prompt_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"


def test_tool_call_is_returned_with_json_arguments(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gpt", messages=user("what is the weather in Paris?"), tools=OPENAI_TOOLS
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.id
    # No tool is named in the text: the mock calls the first one.
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS


def test_forced_tool_choice_calls_that_tool(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gpt",
        messages=user("anything"),
        tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls = completion.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_time"]
    assert json.loads(calls[0].function.arguments) == TIME_ARGS


def test_streamed_parallel_tool_calls_accumulate_by_index(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gpt",
        messages=user("use get_weather and get_time"),
        tools=OPENAI_TOOLS,
        stream=True,
    )
    calls, finishes = openai_stream_tool_calls(stream)

    assert finishes == ["tool_calls"]
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == WEATHER_ARGS
    assert calls[1]["name"] == "get_time"
    assert json.loads(calls[1]["arguments"]) == TIME_ARGS
    assert calls[0]["id"] and calls[1]["id"] and calls[0]["id"] != calls[1]["id"]


def test_tool_result_turn_is_answered_with_text(oai: openai.OpenAI):
    first = oai.chat.completions.create(
        model="gpt", messages=user("weather in Paris? use get_weather"), tools=OPENAI_TOOLS
    )
    call = first.choices[0].message.tool_calls[0]
    second = oai.chat.completions.create(
        model="gpt",
        tools=OPENAI_TOOLS,
        messages=[
            *user("weather in Paris? use get_weather"),
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny and 21C"},
        ],
    )
    choice = second.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "tool result: sunny and 21C"
    assert not choice.message.tool_calls


def test_json_mode_content_parses_as_json(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gpt",
        messages=user("give me json"),
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content
    assert json.loads(content) == {"echo": "give me json"}


def test_json_schema_response_format_content_matches_the_schema(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gpt", messages=user("a person please"), response_format=PERSON_FORMAT
    )
    assert_person(completion.choices[0].message.content)


def test_streamed_json_schema_content_matches_the_schema(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="gpt", messages=user("a person please"), response_format=PERSON_FORMAT, stream=True
    )
    assert_person("".join(c.choices[0].delta.content or "" for c in stream if c.choices))


def test_image_content_part_is_accepted(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gpt",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe this picture"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG_1X1_B64}"},
                    },
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "describe this picture"


def test_n_2_gives_two_choices(oai: openai.OpenAI):
    completion = oai.chat.completions.create(model="gpt", messages=user("twice please"), n=2)
    assert sorted(choice.index for choice in completion.choices) == [0, 1]
    assert [choice.message.content for choice in completion.choices] == ["twice please"] * 2


def test_max_tokens_truncates_with_finish_reason_length(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="gpt", messages=user("a b c d e f g h"), max_tokens=3
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "a b c"
    assert completion.usage.completion_tokens == 3


def test_models_list_includes_the_configured_groups(oai: openai.OpenAI):
    ids = [model.id for model in oai.models.list()]
    for name in ("gpt", "claude", "gpt-hang", "unreachable", "gpt-fail-500"):
        assert name in ids
    assert len(ids) == len(set(ids))


def test_raw_response_carries_a_request_id(oai: openai.OpenAI):
    raw = oai.chat.completions.with_raw_response.create(model="gpt", messages=user("hi"))
    assert raw.http_request.url.path == "/v1/chat/completions"
    assert raw.status_code == 200
    assert raw.headers.get("x-request-id")
    assert raw.parse().choices[0].message.content == "hi"
