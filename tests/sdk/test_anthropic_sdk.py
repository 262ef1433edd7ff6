"""The official `anthropic` SDK against the gateway, with an Anthropic-format upstream
(`claude`)."""

from __future__ import annotations

import anthropic

from support import ANTHROPIC_TOOLS, PNG_1X1_B64, TIME_ARGS, WEATHER_ARGS, user


def test_message_returns_the_echo_with_usage(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude", max_tokens=100, messages=user("hello claude friend")
    )

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.id
    assert len(message.content) == 1
    block = message.content[0]
    assert block.type == "text"
    assert block.text == "hello claude friend"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 3
    assert message.usage.input_tokens > 0


def test_system_prompt_is_accepted(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude",
        max_tokens=100,
        system="Be brief.",
        messages=user("with a system prompt"),
    )
    assert message.content[0].text == "with a system prompt"
    assert message.stop_reason == "end_turn"


def test_system_prompt_as_blocks_and_earlier_turns_are_accepted(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude",
        max_tokens=100,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [{"type": "text", "text": "second turn"}]},
        ],
    )
    assert message.content[0].text == "second turn"


def test_stream_text_joins_to_the_echo_and_final_message_has_usage(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="claude", max_tokens=100, messages=user("stream me four words")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "stream me four words"
    assert final.stop_reason == "end_turn"
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "stream me four words"
    assert final.usage.output_tokens == 4
    assert final.usage.input_tokens > 0


def test_raw_stream_events_come_in_protocol_order(claude: anthropic.Anthropic):
    stream = claude.messages.create(
        model="claude", max_tokens=100, messages=user("a b c"), stream=True
    )
    kinds = [event.type for event in stream]

    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("content_block_delta") == 3


def test_max_tokens_stops_with_reason_max_tokens(claude: anthropic.Anthropic):
    message = claude.messages.create(model="claude", max_tokens=2, messages=user("a b c d e"))
    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "a b"


def test_tool_use_block_has_an_input_dict(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude",
        max_tokens=100,
        messages=user("what is the weather in Paris?"),
        tools=ANTHROPIC_TOOLS,
    )

    assert message.stop_reason == "tool_use"
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert len(tool_uses) == 1
    assert tool_uses[0].id
    assert tool_uses[0].name == "get_weather"
    assert tool_uses[0].input == WEATHER_ARGS


def test_forced_tool_choice_uses_that_tool(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude",
        max_tokens=100,
        messages=user("anything"),
        tools=ANTHROPIC_TOOLS,
        tool_choice={"type": "tool", "name": "get_time"},
    )
    tool_uses = [block for block in message.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [("get_time", TIME_ARGS)]


def test_streamed_tool_use_input_is_assembled_by_the_sdk(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="claude",
        max_tokens=100,
        messages=user("use get_weather and get_time"),
        tools=ANTHROPIC_TOOLS,
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    partials = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(partials) >= 2, "the input arrives as input_json_delta pieces"
    assert final.stop_reason == "tool_use"
    tool_uses = [block for block in final.content if block.type == "tool_use"]
    assert [(t.name, t.input) for t in tool_uses] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert tool_uses[0].id != tool_uses[1].id


def test_tool_result_round_trip_is_answered_with_text(claude: anthropic.Anthropic):
    question = user("weather in Paris? use get_weather")
    first = claude.messages.create(
        model="claude", max_tokens=100, messages=question, tools=ANTHROPIC_TOOLS
    )
    tool_use = next(block for block in first.content if block.type == "tool_use")

    second = claude.messages.create(
        model="claude",
        max_tokens=100,
        tools=ANTHROPIC_TOOLS,
        messages=[
            *question,
            # As the SDK docs show: the response's blocks go back as they are.
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "sunny and 21C"}
                ],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert [block.type for block in second.content] == ["text"]
    assert second.content[0].text == "tool result: sunny and 21C"


def test_image_block_is_accepted(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude",
        max_tokens=100,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_1X1_B64},
                    },
                    {"type": "text", "text": "what is in the image"},
                ],
            }
        ],
    )
    assert message.content[0].text == "what is in the image"


def test_models_list_includes_the_configured_groups(claude: anthropic.Anthropic):
    models = list(claude.models.list())
    ids = [model.id for model in models]
    for name in ("gpt", "claude", "claude-hang"):
        assert name in ids
    assert all(model.type == "model" for model in models)


def test_thinking_block_comes_before_the_text_with_its_signature(claude: anthropic.Anthropic):
    message = claude.messages.create(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("think first"),
    )
    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking
    assert message.content[0].signature
    assert message.content[1].text == "think first"


def test_streamed_thinking_is_assembled_with_its_signature(claude: anthropic.Anthropic):
    with claude.messages.stream(
        model="claude",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=user("think while streaming"),
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    assert any(e.type == "thinking" for e in events)
    assert [block.type for block in final.content] == ["thinking", "text"]
    assert final.content[0].thinking
    assert final.content[0].signature
    assert final.content[1].text == "think while streaming"


def test_thinking_blocks_can_be_sent_back_with_a_tool_result(claude: anthropic.Anthropic):
    question = user("weather? use get_weather")
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = claude.messages.create(
        model="claude", max_tokens=2048, thinking=thinking, messages=question, tools=ANTHROPIC_TOOLS
    )
    assert first.content[0].type == "thinking"
    tool_use = next(block for block in first.content if block.type == "tool_use")
    second = claude.messages.create(
        model="claude",
        max_tokens=2048,
        thinking=thinking,
        tools=ANTHROPIC_TOOLS,
        messages=[
            *question,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "hail"}],
            },
        ],
    )
    assert second.content[-1].type == "text"
    assert second.content[-1].text == "tool result: hail"
