"""The SDKs' higher-level helpers and request options, in both dialects and across them:
structured-output parsing, the chat stream helper, stop sequences, token limits,
parallel-tool switches and the async clients."""

from __future__ import annotations

import asyncio
import json

import anthropic
import openai
import pydantic
import pytest

from support import ANTHROPIC_TOOLS, OPENAI_TOOLS, TIME_ARGS, WEATHER_ARGS, user

BOTH = ["gpt", "claude"]


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


class Weather(pydantic.BaseModel):
    city: str


class Clock(pydantic.BaseModel):
    zone: str
    offset: int


@pytest.mark.parametrize(
    "model", ["gpt", "claude"]
)
def test_openai_sdk_parse_returns_a_pydantic_object(oai: openai.OpenAI, model):
    completion = oai.chat.completions.parse(
        model=model, messages=user("a person please"), response_format=Person
    )
    message = completion.choices[0].message
    assert message.refusal is None
    assert isinstance(message.parsed, Person)
    assert message.parsed == Person(name="mock", age=1, tags=[])


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_stream_helper_gives_text_events_and_a_final_completion(
    oai: openai.OpenAI, model
):
    with oai.chat.completions.stream(
        model=model, messages=user("helper stream text"), stream_options={"include_usage": True}
    ) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()

    assert "".join(deltas) == "helper stream text"
    assert final.choices[0].message.content == "helper stream text"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None and final.usage.completion_tokens == 3


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_stream_helper_assembles_tool_calls(oai: openai.OpenAI, model):
    tools = [
        openai.pydantic_function_tool(Weather, name="get_weather"),
        openai.pydantic_function_tool(Clock, name="get_time"),
    ]
    with oai.chat.completions.stream(
        model=model, messages=user("use get_weather and get_time"), tools=tools
    ) as stream:
        done = [event for event in stream if event.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()

    assert [(e.name, e.parsed_arguments) for e in done] == [
        ("get_weather", Weather(city="mock")),
        ("get_time", Clock(zone="mock", offset=1)),
    ]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [call.function.parsed_arguments for call in choice.message.tool_calls] == [
        Weather(city="mock"),
        Clock(zone="mock", offset=1),
    ]


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_parallel_tool_calls_false_gives_one_call(oai: openai.OpenAI, model):
    completion = oai.chat.completions.create(
        model=model,
        messages=user("use get_weather and get_time"),
        tools=OPENAI_TOOLS,
        parallel_tool_calls=False,
    )
    calls = completion.choices[0].message.tool_calls
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS)
    ]


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_tool_choice_none_gives_text(oai: openai.OpenAI, model):
    completion = oai.chat.completions.create(
        model=model, messages=user("just talk"), tools=OPENAI_TOOLS, tool_choice="none"
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "just talk"
    assert not choice.message.tool_calls


@pytest.mark.parametrize("model", BOTH)
def test_anthropic_sdk_disable_parallel_tool_use_gives_one_tool_use(
    claude: anthropic.Anthropic, model
):
    message = claude.messages.create(
        model=model,
        max_tokens=100,
        messages=user("use get_weather and get_time"),
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_weather", WEATHER_ARGS)]


@pytest.mark.parametrize("model", BOTH)
def test_anthropic_sdk_any_tool_choice_streams_both_named_tools(
    claude: anthropic.Anthropic, model
):
    with claude.messages.stream(
        model=model,
        max_tokens=100,
        messages=user("get_time then get_weather"),
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "any"},
    ) as stream:
        final = stream.get_final_message()
    tool_uses = [block for block in final.content if block.type == "tool_use"]
    # Named tools are called in the order the request defines them.
    assert [(t.name, t.input) for t in tool_uses] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_stop_sequence_cuts_the_text(oai: openai.OpenAI, model):
    completion = oai.chat.completions.create(
        model=model, messages=user("one two three four"), stop=[" three"]
    )
    choice = completion.choices[0]
    assert choice.message.content == "one two"
    assert choice.finish_reason == "stop"


def test_anthropic_sdk_stop_sequence_is_reported(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude", max_tokens=100, messages=user("one two three four"), stop_sequences=[" three"]
    )
    assert message.content[0].text == "one two"
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == " three"


def test_anthropic_sdk_stop_sequence_through_an_openai_upstream_cuts_the_text(
    claude: anthropic.Anthropic,
):
    message = claude.messages.create(
        model="gpt", max_tokens=100, messages=user("one two three four"), stop_sequences=[" three"]
    )
    assert message.content[0].text == "one two"
    assert message.stop_reason in ("stop_sequence", "end_turn")


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_max_completion_tokens_truncates(oai: openai.OpenAI, model):
    completion = oai.chat.completions.create(
        model=model, messages=user("a b c d e f"), max_completion_tokens=2
    )
    choice = completion.choices[0]
    assert choice.message.content == "a b"
    assert choice.finish_reason == "length"
    assert completion.usage.completion_tokens == 2


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_streamed_truncation_reports_length(oai: openai.OpenAI, model):
    stream = oai.chat.completions.create(
        model=model, messages=user("a b c d e f"), max_tokens=2, stream=True
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a b"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]


@pytest.mark.parametrize("model", BOTH)
def test_anthropic_sdk_streamed_truncation_reports_max_tokens(claude: anthropic.Anthropic, model):
    with claude.messages.stream(
        model=model, max_tokens=2, messages=user("a b c d e f")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "a b"
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 2


@pytest.mark.parametrize("model", BOTH)
def test_async_openai_client_chats_and_streams(gateway_url: str, model):
    async def run():
        async with openai.AsyncOpenAI(
            base_url=f"{gateway_url}/v1", api_key="sk-test", max_retries=0, timeout=10
        ) as client:
            completion, stream = await asyncio.gather(
                client.chat.completions.create(model=model, messages=user("async hello")),
                client.chat.completions.create(
                    model=model, messages=user("async stream"), stream=True
                ),
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            return completion.choices[0].message.content, text

    content, text = asyncio.run(run())
    assert content == "async hello"
    assert text == "async stream"


@pytest.mark.parametrize("model", BOTH)
def test_async_anthropic_client_messages_and_streams(gateway_url: str, model):
    async def run():
        async with anthropic.AsyncAnthropic(
            base_url=gateway_url, api_key="sk-test", max_retries=0, timeout=10
        ) as client:
            message = await client.messages.create(
                model=model, max_tokens=50, messages=user("async hello")
            )
            async with client.messages.stream(
                model=model, max_tokens=50, messages=user("async stream")
            ) as stream:
                text = "".join([t async for t in stream.text_stream])
            return message.content[0].text, text

    content, text = asyncio.run(run())
    assert content == "async hello"
    assert text == "async stream"


@pytest.mark.parametrize("model", BOTH)
def test_concurrent_streams_do_not_mix(gateway_url: str, model):
    async def one(client: openai.AsyncOpenAI, n: int) -> str:
        stream = await client.chat.completions.create(
            model=model, messages=user(f"stream number {n} here"), stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def run():
        async with openai.AsyncOpenAI(
            base_url=f"{gateway_url}/v1", api_key="sk-test", max_retries=0, timeout=10
        ) as client:
            return await asyncio.gather(*(one(client, n) for n in range(8)))

    assert asyncio.run(run()) == [f"stream number {n} here" for n in range(8)]


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_developer_message_is_accepted(oai: openai.OpenAI, model):
    completion = oai.chat.completions.create(
        model=model,
        messages=[
            {"role": "developer", "content": "Answer in one word."},
            {"role": "user", "content": "developer role works"},
        ],
    )
    assert completion.choices[0].message.content == "developer role works"


@pytest.mark.parametrize("model", BOTH)
def test_anthropic_sdk_tool_result_blocks_and_is_error_are_accepted(
    claude: anthropic.Anthropic, model
):
    question = user("weather? use get_weather")
    first = claude.messages.create(
        model=model, max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model=model,
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[
            *question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_use.id,
                        "is_error": True,
                        "content": [{"type": "text", "text": "city not found"}],
                    }
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[-1].text == "tool result: city not found"


@pytest.mark.parametrize("model", BOTH)
def test_anthropic_sdk_image_url_source_is_accepted(claude: anthropic.Anthropic, model):
    message = claude.messages.create(
        model=model,
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {"type": "text", "text": "what animal"},
                ],
            }
        ],
    )
    assert message.content[-1].text == "what animal"


@pytest.mark.parametrize("model", BOTH)
def test_openai_sdk_image_url_part_is_accepted(oai: openai.OpenAI, model):
    completion = oai.chat.completions.create(
        model=model,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                    {"type": "text", "text": "what animal"},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "what animal"
