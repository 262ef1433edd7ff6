//! The secrets evaluation: credentials of every kind the secrets guard knows, generated with
//! their real structure (prefixes, lengths, alphabets, a JWT's JSON header, a PEM block's
//! lines), placed in the places people paste them (an `.env` file, a curl command, a JSON
//! config, a stack trace, a chat message), and the same places filled with look-alikes that
//! are not secrets (commit hashes, UUIDs, SHA-256 digests, long identifiers, file paths, URLs
//! without credentials, base64 of ordinary text, documentation placeholders) as negatives.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::Sample;

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const HEX: &[u8] = b"0123456789abcdef";
const UPPER32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn pick(rng: &mut fastrand::Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.usize(..alphabet.len())]))
        .collect()
}

/// Where people paste a credential: `{}` is the value, `{var}` a variable name for it.
const PLACES: &[&str] = &[
    "Here is my .env, why does the app not start?\n{var}={}\nDEBUG=true\nPORT=8080",
    "curl -s -H 'Authorization: Bearer {}' https://api.example.com/v1/items returns 401, help",
    "My config.json is {\"{var}\": \"{}\", \"timeout\": 30, \"retries\": 3} and the client hangs.",
    "Traceback (most recent call last):\n  File \"app.py\", line 12, in <module>\n    client = Client(key=\"{}\")\nAuthError: rejected",
    "can you check this token {} — the deploy job says it expired",
    "export {var}={}\nnpm run build",
];

/// A credential of `entity`, shaped as its issuer makes them.
fn secret(rng: &mut fastrand::Rng, entity: &str) -> String {
    match entity {
        "ANTHROPIC_KEY" => format!("sk-ant-api03-{}AA", pick(rng, URLSAFE, 93)),
        "OPENAI_KEY" => match rng.bool() {
            true => format!("sk-proj-{}", pick(rng, URLSAFE, 156)),
            false => format!(
                "sk-{}T3BlbkFJ{}",
                pick(rng, ALNUM, 20),
                pick(rng, ALNUM, 20)
            ),
        },
        "AWS_ACCESS_KEY" => format!("AKIA{}", pick(rng, UPPER32, 16)),
        "AWS_SECRET_KEY" => pick(rng, BASE64, 40),
        "GITHUB_TOKEN" => match rng.bool() {
            true => format!("ghp_{}", pick(rng, ALNUM, 36)),
            false => format!(
                "github_pat_11{}_{}",
                pick(rng, ALNUM, 20),
                pick(rng, ALNUM, 59)
            ),
        },
        "SLACK_TOKEN" => format!(
            "xoxb-{}-{}-{}",
            rng.u64(1_000_000_000..9_999_999_999),
            rng.u64(1_000_000_000_000..9_999_999_999_999),
            pick(rng, ALNUM, 24)
        ),
        "STRIPE_KEY" => {
            let length = 24 + rng.usize(..76);
            format!(
                "{}_{}_{}",
                if rng.bool() { "sk" } else { "rk" },
                if rng.bool() { "live" } else { "test" },
                pick(rng, ALNUM, length)
            )
        }
        "GOOGLE_API_KEY" => format!("AIza{}", pick(rng, URLSAFE, 35)),
        "JWT" => {
            let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
            let payload = URL_SAFE_NO_PAD.encode(format!(
                r#"{{"sub":"{}","name":"user{}","iat":{}}}"#,
                rng.u32(..),
                rng.u16(..),
                rng.u32(1_600_000_000..1_800_000_000)
            ));
            format!("{header}.{payload}.{}", pick(rng, URLSAFE, 43))
        }
        "CONNECTION_STRING" => {
            let scheme =
                ["postgres", "postgresql", "mysql", "mongodb+srv", "redis"][rng.usize(..5)];
            format!(
                "{scheme}://app_user:{}@db-{}.internal.example.com:5432/orders",
                pick(rng, ALNUM, 16),
                rng.u16(..)
            )
        }
        "PRIVATE_KEY" => {
            let lines: Vec<String> = (0..8).map(|_| pick(rng, BASE64, 64)).collect();
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----",
                lines.join("\n")
            )
        }
        _ => format!("{}{}", pick(rng, ALNUM, 24), pick(rng, URLSAFE, 16)),
    }
}

/// The credential kinds generated, and the variable names they go by.
const KINDS: &[(&str, &str)] = &[
    ("ANTHROPIC_KEY", "ANTHROPIC_API_KEY"),
    ("OPENAI_KEY", "OPENAI_API_KEY"),
    ("AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID"),
    ("AWS_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"),
    ("GITHUB_TOKEN", "GITHUB_TOKEN"),
    ("SLACK_TOKEN", "SLACK_BOT_TOKEN"),
    ("STRIPE_KEY", "STRIPE_SECRET_KEY"),
    ("GOOGLE_API_KEY", "GOOGLE_API_KEY"),
    ("JWT", "SESSION_TOKEN"),
    ("CONNECTION_STRING", "DATABASE_URL"),
    ("PRIVATE_KEY", "TLS_KEY"),
    ("HIGH_ENTROPY_TOKEN", "INTERNAL_API_TOKEN"),
];

/// Look-alikes that are not credentials.
fn decoy(rng: &mut fastrand::Rng, n: usize) -> String {
    match n % 9 {
        0 => pick(rng, HEX, 40),
        1 => format!(
            "{}-{}-4{}-a{}-{}",
            pick(rng, HEX, 8),
            pick(rng, HEX, 4),
            pick(rng, HEX, 3),
            pick(rng, HEX, 3),
            pick(rng, HEX, 12)
        ),
        2 => pick(rng, HEX, 64),
        3 => "user_account_settings_migration_handler_v2_final".to_owned(),
        4 => "/usr/local/lib/python3.11/site-packages/requests/adapters.py".to_owned(),
        5 => format!(
            "postgres://db-{}.internal.example.com:5432/orders",
            rng.u16(..)
        ),
        6 => STANDARD.encode("The quarterly report is attached; please review by Friday."),
        7 => "sk-YOUR_API_KEY_HERE".to_owned(),
        _ => "AKIAXXXXXXXXEXAMPLE".to_owned(),
    }
}

/// `per_place` samples of each kind in each place, and as many look-alikes in each place.
pub fn generate(per_place: usize, seed: u64) -> Vec<Sample> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut samples = Vec::new();
    for place in PLACES {
        let (before, after) = place.split_once("{}").unwrap_or((place, ""));
        for (entity, var) in KINDS {
            for _ in 0..per_place {
                let value = secret(&mut rng, entity);
                let before = before.replace("{var}", var);
                let text = format!("{before}{value}{}", after.replace("{var}", var));
                samples.push(Sample {
                    truth: vec![(Arc::from(*entity), before.len(), before.len() + value.len())],
                    text,
                });
            }
        }
        for n in 0..per_place * 3 {
            let value = decoy(&mut rng, n);
            let text = format!(
                "{}{value}{}",
                before.replace("{var}", "ID"),
                after.replace("{var}", "ID")
            );
            samples.push(Sample {
                truth: Vec::new(),
                text,
            });
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_labelled_where_its_value_is() {
        let samples = generate(2, 1);
        assert_eq!(samples.len(), PLACES.len() * (KINDS.len() * 2 + 6));
        for sample in &samples {
            for (entity, start, end) in &sample.truth {
                let value = &sample.text[*start..*end];
                assert!(
                    !value.contains(' ') || &**entity == "PRIVATE_KEY",
                    "{entity}: {value}"
                );
                assert!(value.len() >= 20, "{entity}: {value}");
            }
        }
        let jwt = secret(&mut fastrand::Rng::with_seed(3), "JWT");
        assert!(
            jwt.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ"),
            "{jwt}"
        );
    }
}
