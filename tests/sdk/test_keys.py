"""Virtual keys as the official SDKs see them: a bad key is their AuthenticationError, a model
the key may not use their PermissionDeniedError (naming the model), a key over its limit their
RateLimitError; keys made through the admin API work from both SDKs, with the request shapes
coding agents send."""

from __future__ import annotations

import json
import urllib.request

import anthropic
import openai
import pytest

from conftest import MASTER_KEY


def admin(url: str, method: str, path: str, body: dict | None = None, key: str = MASTER_KEY) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def new_key(url: str, **fields) -> str:
    return admin(url, "POST", "/admin/keys", fields)["key"]


def openai_client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10.0)


def anthropic_client(url: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=10.0)


HELLO = [{"role": "user", "content": "hello"}]


def test_a_bad_key_is_the_sdks_authentication_error(keyed_gateway: str) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        openai_client(keyed_gateway, "sy-not-a-key").chat.completions.create(model="gpt", messages=HELLO)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic_client(keyed_gateway, "sy-not-a-key").messages.create(
            model="claude", max_tokens=16, messages=HELLO
        )
    assert caught.value.status_code == 401


def test_a_model_outside_the_key_is_the_sdks_permission_error(keyed_gateway: str) -> None:
    key = new_key(keyed_gateway, models=["gpt"])
    assert openai_client(keyed_gateway, key).chat.completions.create(model="gpt", messages=HELLO).choices
    with pytest.raises(openai.PermissionDeniedError) as caught:
        openai_client(keyed_gateway, key).chat.completions.create(model="claude", messages=HELLO)
    assert "claude" in caught.value.message
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        anthropic_client(keyed_gateway, key).messages.create(model="claude", max_tokens=16, messages=HELLO)
    assert "claude" in caught.value.message
    # The model list holds what the key may use.
    assert [model.id for model in openai_client(keyed_gateway, key).models.list()] == ["gpt"]


def test_a_key_over_its_limit_is_the_sdks_rate_limit_error(keyed_gateway: str) -> None:
    key = new_key(keyed_gateway, limits={"rpm": 2})
    client = openai_client(keyed_gateway, key)
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=HELLO)
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    client.chat.completions.create(model="gpt", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt", messages=HELLO)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client(keyed_gateway, key).messages.create(model="claude", max_tokens=16, messages=HELLO)


def test_a_coding_agents_streamed_tool_request_works_with_a_virtual_key(keyed_gateway: str) -> None:
    """Claude Code's shape: system blocks with cache_control, tools, a streamed answer, the key in
    x-api-key and beta headers."""
    key = new_key(keyed_gateway, models=["claude", "gpt"], limits={"tpm": 100000})
    client = anthropic_client(keyed_gateway, key)
    with client.messages.stream(
        model="claude",
        max_tokens=512,
        system=[
            {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        ],
        tools=[
            {
                "name": "Read",
                "description": "Read a file",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }
        ],
        messages=[{"role": "user", "content": [{"type": "text", "text": "read README.md"}]}],
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.usage.output_tokens > 0
    # The same key from the OpenAI SDK, streamed, reaches an Anthropic upstream.
    chunks = list(
        openai_client(keyed_gateway, key).chat.completions.create(
            model="claude", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None


def test_a_blocked_key_is_refused_at_once(keyed_gateway: str) -> None:
    made = admin(keyed_gateway, "POST", "/admin/keys", {"alias": "soon blocked"})
    client = openai_client(keyed_gateway, made["key"])
    client.chat.completions.create(model="gpt", messages=HELLO)
    admin(keyed_gateway, "POST", f"/admin/keys/{made['id']}/block")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model="gpt", messages=HELLO)
    assert "blocked" in caught.value.message
