"""Each SDK against an upstream of the other dialect: the Anthropic SDK reaching an
OpenAI-format upstream (`gpt`), the OpenAI SDK reaching an Anthropic-format upstream
(`claude`)."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from support import (
    ANTHROPIC_TOOLS,
    OPENAI_TOOLS,
    PERSON_FORMAT,
    PNG_1X1_B64,
    TIME_ARGS,
    WEATHER_ARGS,
    assert_person,
    openai_stream_tool_calls,
    user,
)

# --- Anthropic SDK -> OpenAI-format upstream -------------------------------------------------


def test_anthropic_sdk_gets_text_from_an_openai_upstream(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="gpt", max_tokens=100, system="Be brief.", messages=user("cross the border")
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "cross the border"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


def test_anthropic_sdk_streams_from_an_openai_upstream(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="gpt", max_tokens=100, messages=user("stream me please")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "stream me please"
    assert final.stop_reason == "end_turn"
    assert final.content[0].text == "stream me please"
    assert final.usage.output_tokens == 3


def test_anthropic_sdk_gets_tool_use_from_an_openai_upstream(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="gpt", max_tokens=100, messages=user("weather please"), tools=ANTHROPIC_TOOLS
    )
    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]
    assert tool_uses[0].id


def test_anthropic_sdk_streams_parallel_tool_use_from_an_openai_upstream(
    claude: anthropic.Anthropic,
):
    with claude.messages.stream(
        model="gpt",
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


def test_anthropic_sdk_tool_result_round_trip_through_an_openai_upstream(
    claude: anthropic.Anthropic,
):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model="gpt", max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model="gpt",
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
    assert second.content[0].text == "tool result: rain"


def test_anthropic_sdk_image_block_reaches_an_openai_upstream(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="gpt",
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
    assert message.content[0].text == "what is this"


# --- OpenAI SDK -> Anthropic-format upstream -------------------------------------------------


def test_openai_sdk_gets_text_from_an_anthropic_upstream(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "the other way"},
        ],
    )
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "the other way"
    assert choice.finish_reason == "stop"
    assert completion.usage.completion_tokens == 3
    assert completion.usage.prompt_tokens > 0


def test_openai_sdk_streams_from_an_anthropic_upstream_with_usage(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="claude",
        messages=user("from claude with love"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "from claude with love"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 4
    assert last.usage.prompt_tokens > 0


def test_openai_sdk_gets_tool_calls_from_an_anthropic_upstream(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="claude", messages=user("weather in Paris?"), tools=OPENAI_TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert len(calls) == 1
    assert calls[0].type == "function"
    assert calls[0].id
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == WEATHER_ARGS


def test_openai_sdk_streams_parallel_tool_calls_from_an_anthropic_upstream(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="claude",
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


def test_openai_sdk_tool_result_round_trip_through_an_anthropic_upstream(oai: openai.OpenAI):
    question = user("weather in Paris? use get_weather")
    first = oai.chat.completions.create(model="claude", messages=question, tools=OPENAI_TOOLS)
    call = first.choices[0].message.tool_calls[0]
    second = oai.chat.completions.create(
        model="claude",
        tools=OPENAI_TOOLS,
        messages=[
            *question,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "tool result: sunny"


def test_openai_sdk_json_schema_through_an_anthropic_upstream(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="claude", messages=user("a person please"), response_format=PERSON_FORMAT
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls, "the emulation tool must not leak to the client"
    assert_person(choice.message.content)


def test_openai_sdk_streamed_json_schema_through_an_anthropic_upstream(oai: openai.OpenAI):
    stream = oai.chat.completions.create(
        model="claude", messages=user("a person please"), response_format=PERSON_FORMAT, stream=True
    )
    chunks = list(stream)
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert_person("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))


def test_openai_sdk_image_part_reaches_an_anthropic_upstream(oai: openai.OpenAI):
    completion = oai.chat.completions.create(
        model="claude",
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
    assert completion.choices[0].message.content == "describe this picture"
