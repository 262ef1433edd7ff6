"""Errors as each SDK sees them: bad requests, unknown models, upstream faults passed through
with their status, transport faults, and a stream cut after it started."""

from __future__ import annotations

import anthropic
import openai
import pytest

from support import user

# Mock faults, as an OpenAI client sees them: (fault, exception class, status).
OPENAI_STATUS_FAULTS = [
    ("400", openai.BadRequestError, 400),
    ("401", openai.AuthenticationError, 401),
    ("429", openai.RateLimitError, 429),
    ("500", openai.InternalServerError, 500),
    ("503", openai.InternalServerError, 503),
    # OpenAI has no 529: an overloaded Anthropic-style upstream is a 503 to an OpenAI client.
    ("529", openai.InternalServerError, 503),
]
# The same, as an Anthropic client sees them.
ANTHROPIC_STATUS_FAULTS = [
    ("400", anthropic.BadRequestError, 400),
    ("401", anthropic.AuthenticationError, 401),
    ("429", anthropic.RateLimitError, 429),
    ("500", anthropic.InternalServerError, 500),
    ("503", anthropic.ServiceUnavailableError, 503),
    ("529", anthropic.OverloadedError, 529),
]
UPSTREAMS = ["gpt", "claude"]  # OpenAI-format and Anthropic-format upstream

CUT_TEXT = "one two three four five six seven"


# --- bad requests ----------------------------------------------------------------------------


def test_openai_sdk_wrong_field_type_is_a_bad_request_naming_the_field(oai: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="gpt", messages=user("hi"), extra_body={"max_tokens": "ten"}
        )
    error = caught.value
    assert error.status_code == 400
    assert error.type == "invalid_request_error"
    assert error.param == "max_tokens"
    assert error.message


def test_openai_sdk_malformed_json_is_a_bad_request(oai: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.post(
            "/chat/completions",
            cast_to=object,
            content=b'{"model": "gpt", ',
            options={"headers": {"Content-Type": "application/json"}},
        )
    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"


def test_anthropic_sdk_wrong_field_type_is_a_bad_request_naming_the_field(
    claude: anthropic.Anthropic,
):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="claude", max_tokens=10, messages=[{"role": "user", "content": 7}]
        )
    error = caught.value
    assert error.status_code == 400
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "invalid_request_error"
    assert "messages[0].content" in error.body["error"]["message"]


def test_anthropic_sdk_malformed_json_is_a_bad_request(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.post(
            "/v1/messages",
            cast_to=object,
            content=b"not json",
            options={"headers": {"Content-Type": "application/json"}},
        )
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"


# --- unknown model and body limit ------------------------------------------------------------


def test_openai_sdk_unknown_model_is_not_found(oai: openai.OpenAI):
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="no-such-model", messages=user("x"))
    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"


def test_anthropic_sdk_unknown_model_is_not_found(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", max_tokens=5, messages=user("x"))
    assert caught.value.status_code == 404
    assert caught.value.body["error"]["type"] == "not_found_error"


def test_openai_sdk_body_over_the_limit_is_413(oai: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as caught:
        oai.chat.completions.create(model="gpt", messages=user("x" * 70_000))
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"


def test_anthropic_sdk_body_over_the_limit_is_413(claude: anthropic.Anthropic):
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        claude.messages.create(model="claude", max_tokens=5, messages=user("x" * 70_000))
    assert caught.value.status_code == 413
    assert caught.value.body["error"]["type"] == "request_too_large"


# --- upstream statuses -----------------------------------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("fault,exception,status", OPENAI_STATUS_FAULTS, ids=[c[0] for c in OPENAI_STATUS_FAULTS])
def test_openai_sdk_sees_upstream_status(oai: openai.OpenAI, upstream, fault, exception, status):
    with pytest.raises(exception) as caught:
        oai.chat.completions.create(model=f"{upstream}-fail-{fault}", messages=user("x"))
    error = caught.value
    assert error.status_code == status
    assert error.message
    assert isinstance(error.body, dict) and error.body.get("type"), error.body


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize(
    "fault,exception,status", ANTHROPIC_STATUS_FAULTS, ids=[c[0] for c in ANTHROPIC_STATUS_FAULTS]
)
def test_anthropic_sdk_sees_upstream_status(
    claude: anthropic.Anthropic, upstream, fault, exception, status
):
    with pytest.raises(exception) as caught:
        claude.messages.create(model=f"{upstream}-fail-{fault}", max_tokens=5, messages=user("x"))
    error = caught.value
    assert error.status_code == status
    assert error.body["type"] == "error"
    assert error.body["error"]["type"]


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_rate_limit_carries_retry_after(oai: openai.OpenAI, upstream):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model=f"{upstream}-fail-429", messages=user("x"))
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.type == "rate_limit_error"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_anthropic_sdk_rate_limit_carries_retry_after(claude: anthropic.Anthropic, upstream):
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=f"{upstream}-fail-429", max_tokens=5, messages=user("x"))
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_streamed_request_to_a_failing_upstream_raises_before_streaming(
    oai: openai.OpenAI, upstream
):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(
            model=f"{upstream}-fail-500", messages=user("x"), stream=True
        )
    assert caught.value.status_code == 500


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_anthropic_sdk_streamed_request_to_an_overloaded_upstream_raises_before_streaming(
    claude: anthropic.Anthropic, upstream
):
    with pytest.raises(anthropic.OverloadedError) as caught:
        with claude.messages.stream(
            model=f"{upstream}-fail-529", max_tokens=5, messages=user("x")
        ) as stream:
            stream.get_final_message()
    assert caught.value.status_code == 529


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_streamed_request_to_a_rate_limited_upstream_raises_with_retry_after(
    oai: openai.OpenAI, upstream
):
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model=f"{upstream}-fail-429", messages=user("x"), stream=True)
    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_anthropic_sdk_streamed_request_to_a_rate_limited_upstream_raises_with_retry_after(
    claude: anthropic.Anthropic, upstream
):
    with pytest.raises(anthropic.RateLimitError) as caught:
        with claude.messages.stream(
            model=f"{upstream}-fail-429", max_tokens=5, messages=user("x")
        ) as stream:
            stream.get_final_message()
    assert caught.value.response.headers["retry-after"] == "7"


# --- transport faults ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["unreachable", "claude-unreachable"])
def test_openai_sdk_unreachable_upstream_is_502(oai: openai.OpenAI, model):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model=model, messages=user("x"))
    assert caught.value.status_code == 502


@pytest.mark.parametrize("model", ["unreachable", "claude-unreachable"])
def test_anthropic_sdk_unreachable_upstream_is_502(claude: anthropic.Anthropic, model):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(model=model, max_tokens=5, messages=user("x"))
    assert caught.value.status_code == 502
    assert caught.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_reset_connection_is_502(oai: openai.OpenAI, upstream, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model=f"{upstream}-fail-reset", messages=user("x"), stream=stream)
    assert caught.value.status_code == 502


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("fault", ["cut", "malformed"])
def test_openai_sdk_broken_non_streamed_body_is_502(oai: openai.OpenAI, upstream, fault):
    # cut: the upstream sends half its JSON and drops the connection; malformed: a complete 200
    # whose JSON is truncated. Either way there is no answer to give: a bad gateway.
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model=f"{upstream}-fail-{fault}", messages=user("x"))
    assert caught.value.status_code == 502


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_reset_connection_is_502(claude: anthropic.Anthropic, upstream, stream):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(
            model=f"{upstream}-fail-reset", max_tokens=5, messages=user("x"), stream=stream
        )
    assert caught.value.status_code == 502
    assert caught.value.body["error"]["type"] == "api_error"


@pytest.mark.parametrize("upstream", UPSTREAMS)
@pytest.mark.parametrize("fault", ["cut", "malformed"])
def test_anthropic_sdk_broken_non_streamed_body_is_502(
    claude: anthropic.Anthropic, upstream, fault
):
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(model=f"{upstream}-fail-{fault}", max_tokens=5, messages=user("x"))
    assert caught.value.status_code == 502


@pytest.mark.timeout(10)
@pytest.mark.parametrize("model", ["gpt-hang", "claude-hang"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_openai_sdk_hanging_upstream_is_504(oai: openai.OpenAI, model, stream):
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model=model, messages=user("x"), stream=stream, timeout=5)
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("model", ["gpt-hang", "claude-hang"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_anthropic_sdk_hanging_upstream_is_504(claude: anthropic.Anthropic, model, stream):
    with pytest.raises(anthropic.GatewayTimeoutError) as caught:
        claude.messages.create(
            model=model, max_tokens=5, messages=user("x"), stream=stream, timeout=5
        )
    assert caught.value.status_code == 504
    assert caught.value.body["error"]["type"] == "timeout_error"


# --- faults inside a stream that already started ---------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_stream_cut_midway_raises_api_error(oai: openai.OpenAI, upstream):
    stream = oai.chat.completions.create(
        model=f"{upstream}-fail-cut", messages=user(CUT_TEXT), stream=True
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
    # What came before the cut is still delivered.
    assert "".join(received) == "one two three"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_anthropic_sdk_stream_cut_midway_raises_api_error(claude: anthropic.Anthropic, upstream):
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model=f"{upstream}-fail-cut", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            for text in stream.text_stream:
                received.append(text)
    # The gateway ends the stream with an `error` event, which the SDK raises.
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "api_error"
    assert "".join(received) == "one two three"


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_openai_sdk_malformed_stream_chunk_raises_api_error(oai: openai.OpenAI, upstream):
    stream = oai.chat.completions.create(
        model=f"{upstream}-fail-malformed", messages=user(CUT_TEXT), stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert not isinstance(caught.value, openai.APIConnectionError), repr(caught.value)
    assert "malformed" in caught.value.message


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_anthropic_sdk_malformed_stream_event_raises_api_error(
    claude: anthropic.Anthropic, upstream
):
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(
            model=f"{upstream}-fail-malformed", max_tokens=50, messages=user(CUT_TEXT)
        ) as stream:
            stream.get_final_message()
    assert caught.value.body["type"] == "error"
    assert "malformed" in caught.value.body["error"]["message"]


# --- and afterwards -------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_plain_calls_succeed_after_every_kind_of_fault(
    oai: openai.OpenAI, claude: anthropic.Anthropic
):
    faulty = [f"{u}-fail-{f}" for u in UPSTREAMS for f in ("429", "500", "529", "reset", "cut", "malformed")]
    faulty += ["gpt-hang", "claude-hang", "unreachable", "no-such-model"]
    for model in faulty:
        for stream in (False, True):
            try:
                result = oai.chat.completions.create(
                    model=model, messages=user(CUT_TEXT), stream=stream, timeout=5
                )
                if stream:
                    for _ in result:
                        pass
            except openai.APIError:
                pass
            try:
                result = claude.messages.create(
                    model=model, max_tokens=20, messages=user(CUT_TEXT), stream=stream, timeout=5
                )
                if stream:
                    for _ in result:
                        pass
            except anthropic.APIError:
                pass
    # A client that gave up mid-stream.
    stream = oai.chat.completions.create(model="gpt", messages=user(CUT_TEXT), stream=True)
    next(iter(stream))
    stream.close()

    for model in ("gpt", "claude"):
        completion = oai.chat.completions.create(model=model, messages=user("still here"))
        assert completion.choices[0].message.content == "still here"
        message = claude.messages.create(model=model, max_tokens=20, messages=user("still here"))
        assert message.content[0].text == "still here"
