"""The answer cache as the official SDKs see it: a repeated call comes back from the cache
(`x-switchyard-cache: hit`) whole, streamed, and through each SDK's stream helper, with the
same text and a normal end."""

from __future__ import annotations

import uuid

import anthropic
import openai

from support import user


def _question() -> str:
    # A prompt of its own per test: the gateway and its cache live for the whole session.
    return f"Which planet is largest? ({uuid.uuid4().hex[:8]})"


def test_openai_sdk_gets_a_repeated_call_from_the_cache(oai: openai.OpenAI):
    prompt = _question()
    first = oai.chat.completions.with_raw_response.create(model="cached", messages=user(prompt))
    assert first.headers["x-switchyard-cache"] == "miss"
    again = oai.chat.completions.with_raw_response.create(model="cached", messages=user(prompt))
    assert again.headers["x-switchyard-cache"] == "hit"
    assert again.headers["x-switchyard-cache-key"] == first.headers["x-switchyard-cache-key"]
    text = first.parse().choices[0].message.content
    completion = again.parse()
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == first.parse().usage.total_tokens

    # Streamed: a replay of the kept answer, with the usage chunk asked for.
    chunks = list(
        oai.chat.completions.create(
            model="cached",
            messages=user(prompt),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0

    # The stream helper assembles the replay into the same completion.
    with oai.chat.completions.stream(model="cached", messages=user(prompt)) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == text


def test_anthropic_sdk_gets_a_repeated_call_from_the_cache(claude: anthropic.Anthropic):
    prompt = _question()
    first = claude.messages.with_raw_response.create(
        model="cached-claude", max_tokens=200, messages=user(prompt)
    )
    assert first.headers["x-switchyard-cache"] == "miss"
    text = first.parse().content[0].text
    with claude.messages.stream(
        model="cached-claude", max_tokens=200, messages=user(prompt)
    ) as stream:
        final = stream.get_final_message()
        assert stream.response.headers["x-switchyard-cache"] == "hit"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == first.parse().usage.input_tokens
