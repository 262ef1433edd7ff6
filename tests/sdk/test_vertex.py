"""Both SDKs against a Google Vertex AI upstream (`provider: mock_vertex`): the gateway signs a
JWT with the service account in `credentials_file`, trades it for an OAuth access token at the
mock's token endpoint, and sends Gemini's `generateContent` / `streamGenerateContent?alt=sse`
under `projects/{project}/locations/{location}/publishers/google/models/{model}` with that
token (the mock refuses any token it did not issue). What only Vertex does is here: the token,
fetched once and reused. The behaviours every translated upstream shares (answers in
`europe-west4`, faults in the default `us-central1`) are in test_upstreams.py.

Models: `vertex` (the echo, in `europe-west4`).
"""

from __future__ import annotations

import anthropic
import openai

from support import openai_stream_text, user


# --- the access token: fetched once, then reused ---------------------------------------------


def test_vertex_answers_several_calls_in_a_row(oai: openai.OpenAI, claude: anthropic.Anthropic):
    # Each call needs a token the mock issued and that has not expired; the gateway keeps the
    # one it got (valid for an hour) for the calls after, whichever dialect and mode they use.
    for i in range(4):
        completion = oai.chat.completions.create(model="vertex", messages=user(f"call {i}"))
        assert completion.choices[0].message.content == f"call {i}"
        message = claude.messages.create(model="vertex", max_tokens=20, messages=user(f"call {i}"))
        assert message.content[0].text == f"call {i}"
    text, finishes = openai_stream_text(
        oai.chat.completions.create(model="vertex", messages=user("streamed call"), stream=True)
    )
    assert (text, finishes) == ("streamed call", ["stop"])
    with claude.messages.stream(
        model="vertex", max_tokens=20, messages=user("streamed call")
    ) as stream:
        assert "".join(stream.text_stream) == "streamed call"
