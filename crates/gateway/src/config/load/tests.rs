//! Config loading and validation: every problem reported, with its path.
use super::*;
use crate::config::defaults::DEFAULT_CONFIG;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn the_embedded_defaults_are_valid() {
    let config = validate(DEFAULT_CONFIG, &env(&[])).expect("defaults are valid");
    assert_eq!(config.server, ServerConfig::default());
    assert_eq!(config.models[0].name, "mock/echo");
}

#[test]
fn an_empty_file_is_the_default_server_with_no_models() {
    let config = validate("", &env(&[])).expect("valid");
    assert_eq!(config.server, ServerConfig::default());
    assert!(config.models.is_empty());
}

#[test]
fn secrets_come_from_the_environment() {
    let text = "models:\n  - name: gpt\n    deployments:\n      - provider: openai\n        model: gpt-4o\n        api_key: ${OPENAI_API_KEY}\n        api_base: ${BASE:-https://api.openai.com/v1}\n";
    let config = validate(text, &env(&[("OPENAI_API_KEY", "sk-test")])).expect("valid");
    let deployment = &config.models[0].deployments[0];
    assert_eq!(
        deployment.api_key.as_ref().map(|key| key.expose()),
        Some("sk-test")
    );
    assert_eq!(
        deployment.api_base.as_deref(),
        Some("https://api.openai.com/v1")
    );
    // Printed (a bug report, a debug log), the config shows no secret.
    let printed = format!("{config:?}");
    assert!(!printed.contains("sk-test"), "{printed}");
    assert!(printed.contains("[redacted]"));
}

#[test]
fn reports_every_problem_with_its_path() {
    let text = r#"
server:
  listen: not-an-address
  colour: blue
extra: 1
models:
  - name: a
    deployments:
      - provider: openai
        model: gpt-4o
        api_key: ${MISSING_KEY}
  - name: b
    deployments: []
  - name: c
    deployments:
      - provider: openai_compatible
        model: x
        api_base: "::nope"
      - provider: unknown
        model: why
      - provider: anthropic
        model: claude
        api_key: k
        timeout_secs: -1
      - provider: groq
        model: llama
        api_key: k
        colour: blue
  - name: a
    deployments:
      - provider: mock
        model: echo
"#;
    let errors = validate(text, &env(&[])).expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let expect = [
        "models[0].deployments[0].api_key: environment variable MISSING_KEY is not set",
        "extra: unknown section",
        "server.colour: unknown field `colour`",
        "models[2].deployments[3].colour: unknown field `colour`",
        "server.listen: `not-an-address` is not an address",
        "models[1].deployments: a model group needs at least one deployment",
        "models[2].deployments[0].api_base: not a URL",
        "models[2].deployments[1].provider: unknown provider `unknown`",
        "models[2].deployments[2].timeout_secs: must be a number of seconds",
        "models[3].name: `a` names more than one model group",
    ];
    for expected in expect {
        assert!(
            lines.iter().any(|line| line.starts_with(expected)),
            "missing `{expected}` in {lines:#?}"
        );
    }
}

#[test]
fn wrong_types_are_reported_with_their_path() {
    let text = "server:\n  body_limit_bytes: lots\nmodels:\n  - name: m\n    aliases: nope\n    deployments:\n      - provider: mock\n        model: echo\n";
    let errors = validate(text, &env(&[])).expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("server.body_limit_bytes: invalid type")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("models[0].aliases: invalid type")),
        "{lines:?}"
    );
}

#[test]
fn provider_specific_keys_are_checked() {
    let text = "models:\n  - name: m\n    deployments:\n      - provider: openai\n        model: x\n        api_key: k\n        connect_timeout_secs: 0\n        aws_region: us-east-1\n        api_version: v1\n  - name: b\n    deployments:\n      - provider: bedrock\n        model: why\n  - name: v\n    deployments:\n      - provider: vertex\n        model: z\n";
    let errors = validate(text, &env(&[])).expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    for expected in [
        "models[0].deployments[0].connect_timeout_secs: must be a number of seconds",
        "models[0].deployments[0].aws_region: only AWS Bedrock deployments",
        "models[0].deployments[0].api_version: only Azure OpenAI deployments",
        "models[1].deployments[0].aws_region: required for provider `bedrock`",
        "models[2].deployments[0].credentials_file: required for provider `vertex`",
    ] {
        assert!(
            lines.iter().any(|line| line.starts_with(expected)),
            "missing `{expected}` in {lines:#?}"
        );
    }
}

#[test]
fn yaml_syntax_errors_are_reported() {
    let errors = validate("models: [\n  - name", &env(&[])).expect_err("invalid");
    assert!(errors[0].message.starts_with("invalid YAML"), "{errors:?}");
}

#[test]
fn otlp_endpoint_and_headers_come_from_the_environment_unless_the_file_sets_them() {
    let config = validate(
        "",
        &env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=abc%3D%3D , x-team=core,broken",
            ),
        ]),
    )
    .expect("valid");
    assert_eq!(
        config.otel.endpoint.as_deref(),
        Some("http://collector:4318")
    );
    let headers: Vec<(&str, &str)> = config
        .otel
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    assert_eq!(headers, [("api-key", "abc=="), ("x-team", "core")]);
    assert!(
        !format!("{config:?}").contains("abc=="),
        "headers are secrets"
    );

    let config = validate(
        "otel:\n  endpoint: http://mine:4318\n  headers:\n    authorization: Bearer t\n",
        &env(&[("OTEL_EXPORTER_OTLP_HEADERS", "api-key=abc")]),
    )
    .expect("valid");
    assert_eq!(config.otel.headers.len(), 1);
    assert_eq!(
        config.otel.headers.get("authorization").map(Secret::expose),
        Some("Bearer t")
    );

    let errors = validate("otel:\n  headers:\n    \"bad name\": x\n", &env(&[]))
        .expect_err("a bad header name");
    assert!(
        errors.iter().any(|error| error.path == "otel.headers"),
        "{errors:?}"
    );
}
