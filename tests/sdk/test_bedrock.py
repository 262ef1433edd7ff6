"""Both SDKs against an AWS Bedrock upstream (`provider: mock_bedrock`; the mock plays Bedrock's
Converse API, `/model/{modelId}/converse` and `/converse-stream` with binary event-stream
frames, and checks every request's SigV4 signature). What only Bedrock does is here: turns that
must alternate, images as bytes only, signatures, and exception frames inside a stream. The
behaviours every translated upstream shares (answers, streams, tools, images, statuses with
Bedrock's error codes, stream cuts, recovery) are in test_upstreams.py.

Models: `bedrock` (a Claude model id), `bedrock-wrong-key` (`provider: bedrock` signing with a
secret the mock does not know), and `bedrock-fail-stream_exception` from conftest's
BEDROCK_FAULTS.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from support import (
    ANTHROPIC_URL_SOURCE,
    IMAGE_URL,
    anthropic_image_messages,
    anthropic_stream_until_error,
    assert_anthropic_error,
    openai_image_messages,
    openai_stream_until_error,
    user,
)

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


# --- turns that alternate --------------------------------------------------------------------


def test_openai_sdk_consecutive_user_messages_reach_bedrock(oai: openai.OpenAI):
    # Converse wants user and assistant turns to alternate: the gateway must join the two user
    # messages into one turn (the mock refuses a conversation that does not alternate).
    completion = oai.chat.completions.create(
        model="bedrock",
        messages=[
            {"role": "user", "content": "first part"},
            {"role": "user", "content": "second part"},
        ],
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content.split() == ["first", "part", "second", "part"]


# --- an image by URL: Converse takes image bytes only ----------------------------------------


@STREAM
def test_openai_sdk_url_image_to_bedrock_is_a_bad_request(oai: openai.OpenAI, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="bedrock",
            messages=openai_image_messages("describe this picture", IMAGE_URL),
            stream=stream,
        )
    error = caught.value
    assert error.status_code == 400
    assert error.type == "invalid_request_error"
    assert error.param == "messages[0].content[1]"
    assert "URL" in error.message, error.message


@STREAM
def test_anthropic_sdk_url_image_to_bedrock_is_a_bad_request(claude: anthropic.Anthropic, stream):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="bedrock",
            max_tokens=100,
            messages=anthropic_image_messages("what is this", ANTHROPIC_URL_SOURCE),
            stream=stream,
        )
    error = caught.value
    assert error.status_code == 400
    assert_anthropic_error(error, "invalid_request_error")
    assert "URL" in error.body["error"]["message"], error.body


# --- a bad signature: the gateway's AWS credentials are wrong --------------------------------


@STREAM
def test_openai_sdk_bedrock_bad_signature_is_an_authentication_error(
    oai: openai.OpenAI, stream
):
    with pytest.raises(openai.AuthenticationError) as caught:
        oai.chat.completions.create(model="bedrock-wrong-key", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 401
    assert error.type == "authentication_error"
    # Bedrock's error type is the code.
    assert error.code == "InvalidSignatureException"
    assert "signature" in error.message, error.message


@STREAM
def test_anthropic_sdk_bedrock_bad_signature_is_an_authentication_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        claude.messages.create(
            model="bedrock-wrong-key", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 401
    assert_anthropic_error(error, "authentication_error")
    assert "signature" in error.body["error"]["message"], error.body


# --- an exception frame midway ---------------------------------------------------------------


# Bedrock reports a failure inside a started stream as an exception frame
# (`modelStreamErrorException`); the mock sends it in the same write as the delta before it.
def test_openai_sdk_bedrock_exception_frame_midway_raises_api_error(oai: openai.OpenAI):
    error, received = openai_stream_until_error(
        oai, "bedrock-fail-stream_exception", openai.APIError
    )
    assert error.code == "ModelStreamErrorException"
    # The three deltas Bedrock sent before the exception are delivered.
    assert received == "one two three"


def test_anthropic_sdk_bedrock_exception_frame_midway_raises_api_error(
    claude: anthropic.Anthropic,
):
    _, received = anthropic_stream_until_error(
        claude, "bedrock-fail-stream_exception", anthropic.APIStatusError
    )
    assert received == "one two three"
