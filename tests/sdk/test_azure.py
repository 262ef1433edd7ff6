"""Both SDKs against an Azure OpenAI upstream (`provider: azure`; the mock plays Azure's
`/openai/deployments/{deployment}/chat/completions?api-version=…` and the v1 API's
`/openai/v1/chat/completions`). What only Azure does is here: its ways to authenticate and
address a deployment, its content-filter annotations and refusals, and a refused key. The
behaviours every translated upstream shares (answers, streams, tools, images by bytes and URL,
statuses, stream cuts, recovery) are in test_upstreams.py, against `azure`.

Models: `azure` (`api-key` auth, the dated API), `azure-bearer` (an Entra ID token, a chosen
API version), `azure-v1` (the v1 API), `azure-wrong-key` (a key Azure refuses), and
`azure-fail-content_filter` from conftest's AZURE_FAULTS.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from support import (
    assert_anthropic_error,
    assert_anthropic_streams,
    assert_anthropic_text_and_usage,
    assert_openai_streams_with_usage,
    assert_openai_text_and_usage,
    user,
)

# The ways to reach a deployment: api-key with the default API version, Entra ID bearer with
# a chosen one, the v1 API.
AZURE_MODELS = ["azure", "azure-bearer", "azure-v1"]
# Those test_upstreams.py does not already answer through (it uses `azure`).
AZURE_AUTH_VARIANTS = ["azure-bearer", "azure-v1"]

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])


# --- every way to reach a deployment: answers ------------------------------------------------


@pytest.mark.parametrize("model", AZURE_MODELS)
def test_openai_sdk_gets_text_usage_and_filter_results_from_azure(oai: openai.OpenAI, model):
    completion = assert_openai_text_and_usage(oai, model)
    choice = completion.choices[0]
    # Azure's content-filter annotations reach an OpenAI client as they are.
    filters = (choice.model_extra or {}).get("content_filter_results")
    assert filters is not None, choice
    assert filters["hate"] == {"filtered": False, "severity": "safe"}
    prompt_filters = (completion.model_extra or {}).get("prompt_filter_results")
    assert prompt_filters and prompt_filters[0]["prompt_index"] == 0, completion


@pytest.mark.parametrize("model", AZURE_AUTH_VARIANTS)
def test_openai_sdk_streams_from_azure_with_usage(oai: openai.OpenAI, model):
    assert_openai_streams_with_usage(oai, model, "stream from azure please")


@pytest.mark.parametrize("model", AZURE_AUTH_VARIANTS)
def test_anthropic_sdk_gets_text_and_usage_from_azure(claude: anthropic.Anthropic, model):
    assert_anthropic_text_and_usage(claude, model)


@pytest.mark.parametrize("model", AZURE_AUTH_VARIANTS)
def test_anthropic_sdk_streams_from_azure(claude: anthropic.Anthropic, model):
    assert_anthropic_streams(claude, model, "stream from azure please")


# --- Azure's content filter: a prompt refused (400 content_filter) ---------------------------


@STREAM
def test_openai_sdk_azure_content_filter_is_a_bad_request(oai: openai.OpenAI, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model="azure-fail-content_filter", messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 400
    assert error.code == "content_filter"
    assert "content management policy" in error.message, error.message


@STREAM
def test_anthropic_sdk_azure_content_filter_is_a_bad_request(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="azure-fail-content_filter", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 400
    assert_anthropic_error(error, "invalid_request_error")
    assert "content management policy" in error.body["error"]["message"], error.body


# --- a key Azure refuses ---------------------------------------------------------------------


@STREAM
def test_openai_sdk_azure_refused_key_is_an_authentication_error(oai: openai.OpenAI, stream):
    with pytest.raises(openai.AuthenticationError) as caught:
        oai.chat.completions.create(model="azure-wrong-key", messages=user("x"), stream=stream)
    error = caught.value
    assert error.status_code == 401
    assert error.type == "authentication_error"
    assert error.message


@STREAM
def test_anthropic_sdk_azure_refused_key_is_an_authentication_error(
    claude: anthropic.Anthropic, stream
):
    with pytest.raises(anthropic.AuthenticationError) as caught:
        claude.messages.create(
            model="azure-wrong-key", max_tokens=5, messages=user("x"), stream=stream
        )
    error = caught.value
    assert error.status_code == 401
    assert_anthropic_error(error, "authentication_error")
