use std::collections::HashMap;

use super::*;

fn scanner() -> Scanner {
    let mut recognizers = pii_recognizers();
    recognizers.extend(secret_recognizers());
    Scanner::new(recognizers, 0.5, HashMap::new()).expect("patterns compile")
}

/// The entities found in `text`, with the text of each.
fn found(text: &str) -> Vec<(String, String)> {
    scanner()
        .scan(text)
        .into_iter()
        .map(|f| (f.entity.to_string(), text[f.start..f.end].to_owned()))
        .collect()
}

fn one(entity: &str, value: &str) -> Vec<(String, String)> {
    vec![(entity.to_owned(), value.to_owned())]
}

#[test]
fn personal_data_is_found_with_its_checks() {
    assert_eq!(
        found("write to ada.lovelace+work@example.co.uk today"),
        one("EMAIL", "ada.lovelace+work@example.co.uk")
    );
    assert_eq!(
        found("my card is 4111 1111 1111 1111."),
        one("CREDIT_CARD", "4111 1111 1111 1111")
    );
    assert_eq!(
        found("pay GB82 WEST 1234 5698 7654 32 please"),
        one("IBAN", "GB82 WEST 1234 5698 7654 32")
    );
    assert_eq!(found("SSN: 536-22-1987"), one("US_SSN", "536-22-1987"));
    assert_eq!(
        found("call me on +44 20 7946 0958"),
        one("PHONE", "+44 20 7946 0958")
    );
    assert_eq!(
        found("phone (415) 555-2671"),
        one("PHONE", "(415) 555-2671")
    );
    assert_eq!(
        found("from 203.0.113.54 at noon"),
        one("IP_ADDRESS", "203.0.113.54")
    );
    assert_eq!(
        found("host 2001:db8:85a3::8a2e:370:7334 is up"),
        one("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334")
    );
    assert_eq!(
        found("she was born on 14/03/1987 in Ulm"),
        one("DATE_OF_BIRTH", "14/03/1987")
    );
    assert_eq!(
        found("send to 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        one("CRYPTO_WALLET", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2")
    );
}

#[test]
fn look_alikes_are_not_findings() {
    for text in [
        "order 4111 1111 1111 1112 shipped", // fails Luhn
        "GB82 WEST 1234 5698 7654 33",       // fails mod-97
        "ticket 666-12-3456",                // no such SSN
        "version 1.2.3.4567 and 999.1.1.1",  // not addresses
        "the meeting is on 14/03/2024",      // a date, not a birth date
        "order number 123456789",            // nine digits without context
        "the ratio is 3.14159 and 2.71828",
        "see https://example.com/docs?id=42",
        "a long word: antidisestablishmentarianismxxxxxxxx",
    ] {
        assert_eq!(found(text), vec![], "{text}");
    }
}

#[test]
fn a_phone_number_that_passes_luhn_is_still_a_phone_number() {
    assert_eq!(
        found("fax +44 079 3398 9140 today"),
        one("PHONE", "+44 079 3398 9140")
    );
    assert_eq!(
        found("card 4111 1111 1111 1111"),
        one("CREDIT_CARD", "4111 1111 1111 1111")
    );
}

#[test]
fn context_words_raise_a_weak_match_over_the_threshold() {
    assert_eq!(found("ssn 536221987"), one("US_SSN", "536221987"));
    assert_eq!(found("536221987"), vec![]);
    assert_eq!(found("DOB: 1987-03-14"), one("DATE_OF_BIRTH", "1987-03-14"));
}

#[test]
fn secrets_are_found() {
    let cases = [
        ("OPENAI_KEY", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
        (
            "ANTHROPIC_KEY",
            "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        ),
        ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
        ("GITHUB_TOKEN", "ghp_0123456789abcdefghijABCDEFGHIJ012345"),
        ("SLACK_TOKEN", "xoxb-123456789012-abcdefghij"),
        ("STRIPE_KEY", "sk_live_0123456789abcdefABCDEF"),
        ("GOOGLE_API_KEY", "AIzaSyA-0123456789abcdefghijklmnopqrstu"),
        (
            "JWT",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        (
            "CONNECTION_STRING",
            "postgres://admin:hunter2@db.internal:5432",
        ),
        ("HIGH_ENTROPY_TOKEN", "Zx8kQ2mP9vL4tR7wN1bC6yH3jF5gD0sAq"),
    ];
    for (entity, value) in cases {
        let text = format!("use {value} for this");
        assert_eq!(found(&text), one(entity, value), "{text}");
    }
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    assert_eq!(found(&format!("key:\n{key}\n")), one("PRIVATE_KEY", key));
    let aws = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    assert_eq!(
        found(aws),
        one("AWS_SECRET_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    );
}

#[test]
fn overlaps_keep_the_surer_and_longer_finding() {
    // An Anthropic key also looks like an OpenAI key and a high-entropy token: one finding.
    let text = "sk-ant-api03-Zx8kQ2mP9vL4tR7wN1bC6yH3jF5gD0sA";
    assert_eq!(found(text), one("ANTHROPIC_KEY", text));
}

#[test]
fn custom_patterns_and_deny_lists_come_from_the_config() {
    let recognizers = vec![
        Recognizer::custom("EMPLOYEE_ID", Category::Pii, r"\bEMP-\d{6}\b", 0.6, &[])
            .expect("pattern"),
        Recognizer::deny_list(
            "PROJECT",
            Category::Pii,
            &["Blue Falcon".to_owned(), "Nightjar".to_owned()],
        )
        .expect("terms"),
    ];
    let scanner = Scanner::new(recognizers, 0.5, HashMap::new()).expect("scanner");
    let text = "EMP-004211 works on blue falcon, not Nightjars";
    let found: Vec<&str> = scanner
        .scan(text)
        .iter()
        .map(|f| &text[f.start..f.end])
        .collect();
    assert_eq!(found, ["EMP-004211", "blue falcon"]);
    // A pattern that would backtrack forever elsewhere is linear here, or refused.
    assert!(Recognizer::custom("X", Category::Pii, r"(a+)+$", 1.0, &[]).is_ok());
    assert!(Recognizer::custom("X", Category::Pii, r"(", 1.0, &[]).is_err());
}

#[test]
fn thresholds_are_per_entity() {
    let mut thresholds = HashMap::new();
    thresholds.insert(Arc::from("IP_ADDRESS"), 0.9);
    let scanner = Scanner::new(pii_recognizers(), 0.5, thresholds).expect("scanner");
    assert!(scanner.scan("from 203.0.113.54").is_empty());
    assert_eq!(
        scanner.scan("ip 203.0.113.54").len(),
        1,
        "context lifts it to 0.95"
    );
}
