"""`/metrics` as Prometheus reads it: parsed by the official Python client's OpenMetrics parser
(which checks names, types, label syntax, histogram buckets and the closing `# EOF`), after
calls made with the official SDKs."""

import urllib.request

import anthropic
import openai
from prometheus_client.openmetrics.parser import text_string_to_metric_families


def _scrape(gateway_url: str) -> dict:
    with urllib.request.urlopen(f"{gateway_url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(families: dict, family: str, sample: str, **labels) -> float:
    """The sum of the samples `sample` of `family` with `labels` (0 for a family with no
    series yet: it is not written until it has one)."""
    if family not in families:
        return 0
    return sum(
        s.value
        for s in families[family].samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_calls_from_both_sdks_appear_in_parsed_metrics(
    gateway_url: str, oai: openai.OpenAI, claude: anthropic.Anthropic
):
    before = _scrape(gateway_url)
    start_gpt = _value(before, "switchyard_requests", "switchyard_requests_total", model="gpt", status="200")
    oai.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "count me"}])
    with oai.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "stream me"}], stream=True
    ) as stream:
        for _ in stream:
            pass
    claude.messages.create(
        model="claude", max_tokens=20, messages=[{"role": "user", "content": "count me too"}]
    )
    after = _scrape(gateway_url)
    assert after["switchyard_requests"].type == "counter"
    assert (
        _value(after, "switchyard_requests", "switchyard_requests_total", model="gpt", status="200")
        == start_gpt + 2
    )
    duration = after["switchyard_request_duration_seconds"]
    assert duration.type == "histogram" and duration.unit == "seconds"
    assert _value(after, "switchyard_request_duration_seconds", "switchyard_request_duration_seconds_count", model="claude") >= 1
    assert _value(after, "switchyard_tokens", "switchyard_tokens_total", model="gpt", type="completion") > 0
    assert after["gen_ai_client_token_usage"].type == "histogram"
    assert _value(
        after,
        "gen_ai_client_token_usage",
        "gen_ai_client_token_usage_count",
        gen_ai_provider_name="anthropic",
        gen_ai_token_type="input",
    ) >= 1
    assert after["switchyard_requests_in_flight"].type == "gauge"


def test_unknown_models_stay_one_label_value(gateway_url: str, oai: openai.OpenAI):
    for n in range(300):
        try:
            oai.chat.completions.create(
                model=f"no-such-model-{n}", messages=[{"role": "user", "content": "x"}]
            )
        except openai.NotFoundError:
            pass
    families = _scrape(gateway_url)
    models = {
        s.labels.get("model")
        for family in families.values()
        for s in family.samples
        if "model" in s.labels
    }
    assert not any(m.startswith("no-such-model") for m in models)
    assert "unknown" in models
