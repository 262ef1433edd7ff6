"""Both SDKs against a Gemini upstream (`provider: gemini`; the mock plays Gemini's
`generateContent` and `streamGenerateContent?alt=sse`): what only Gemini does, an answer withheld
(finish reason SAFETY) and a prompt refused (`promptFeedback.blockReason`). The behaviours every
translated upstream shares (answers, streams, tools, images, statuses, stream cuts) are in
test_upstreams.py.

Models: `gemini-fail-safety` and `gemini-fail-blocked` from conftest's GEMINI_FAULTS.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from support import assert_anthropic_error, user


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
    assert_anthropic_error(error, "invalid_request_error")
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
    assert_anthropic_error(error, "invalid_request_error")
    assert "SAFETY" in error.body["error"]["message"], error.body
