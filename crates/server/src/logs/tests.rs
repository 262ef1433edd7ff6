use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use serde_json::{Value, json};
use tracing::{info, info_span, warn};

use super::{Lines, Style, timestamp};

/// What the subscriber wrote, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The lines `emit` logs in `style`, each without its newline.
fn lines(style: Style, emit: impl FnOnce()) -> Vec<String> {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .event_format(Lines(style))
        .fmt_fields(Lines(style))
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, emit);
    let bytes = captured.0.lock().expect("lock").clone();
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(text.ends_with('\n'), "lines end with a newline: {text:?}");
    text.lines().map(str::to_owned).collect()
}

/// Splits a text line into its timestamp and the rest.
fn untimed(line: &str) -> (&str, &str) {
    let (time, rest) = line.split_at(27);
    assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
    (time, rest)
}

#[test]
fn a_text_line_reads_level_target_message_and_fields() {
    let lines = lines(Style::Text, || {
        info!(
            target: "switchyard::test",
            request_id = "req_1",
            model = %"mock/echo",
            status = 200,
            ok = true,
            delta = -3,
            ratio = 0.5,
            "Request completed"
        );
        warn!(target: "switchyard::test", "No fields");
    });
    assert_eq!(lines.len(), 2);
    assert_eq!(
        untimed(&lines[0]).1,
        "  INFO switchyard::test: Request completed request_id=req_1 model=mock/echo status=200 ok=true delta=-3 ratio=0.5"
    );
    assert_eq!(untimed(&lines[1]).1, "  WARN switchyard::test: No fields");
}

#[test]
fn text_values_cannot_break_a_line_or_carry_control_codes() {
    let forged = "mock/echo\n2026-11-27T21:12:59.637342Z  INFO forged";
    let lines = lines(Style::Text, || {
        info!(
            target: "t",
            model = %forged,
            colour = "\u{1b}[31mred\u{9b}",
            spaced = "two words",
            quoted = "say \"hi\" \\ bye",
            empty = "",
            equals = "a=b",
            separator = "a\u{2028}b",
            braces = "a}:b{",
            r"The model `{forged}` does not exist \n"
        );
    });
    assert_eq!(lines.len(), 1, "one event, one line: {lines:?}");
    assert_eq!(
        untimed(&lines[0]).1,
        concat!(
            "  INFO t: The model `mock/echo\\n2026-11-27T21:12:59.637342Z  INFO forged` does not exist \\\\n",
            r#" model="mock/echo\n2026-11-27T21:12:59.637342Z  INFO forged""#,
            r#" colour="\u{1b}[31mred\u{9b}""#,
            r#" spaced="two words""#,
            r#" quoted="say \"hi\" \\ bye""#,
            r#" empty="""#,
            r#" equals="a=b""#,
            r#" separator="a\u{2028}b""#,
            r#" braces="a}:b{""#,
        )
    );
    assert!(!lines[0].contains('\u{1b}'));
}

#[test]
fn a_json_line_is_one_object_with_typed_fields() {
    let message = "line one\nline two \u{1b}[0m \u{85} \"quoted\" \\";
    let lines = lines(Style::Json, || {
        info!(
            target: "switchyard::test",
            request_id = "req_1",
            status = 200_u64,
            delta = -3,
            ok = false,
            ratio = 0.25,
            nan = f64::NAN,
            error = %"upstream said \"no\"",
            "{message}"
        );
    });
    assert_eq!(lines.len(), 1);
    assert!(!lines[0].contains('\u{1b}') && !lines[0].contains('\u{85}'));
    let value: Value = serde_json::from_str(&lines[0]).expect("JSON");
    let time = value["timestamp"].as_str().expect("timestamp");
    assert_eq!(time.len(), 27);
    assert_eq!(value["level"], "INFO");
    assert_eq!(value["target"], "switchyard::test");
    assert_eq!(
        value["fields"],
        json!({
            "message": message,
            "request_id": "req_1",
            "status": 200,
            "delta": -3,
            "ok": false,
            "ratio": 0.25,
            "nan": "NaN",
            "error": "upstream said \"no\"",
        })
    );
    assert!(value.get("spans").is_none());
}

#[test]
fn spans_and_their_fields_lead_the_line() {
    let emit = || {
        let outer = info_span!("outer", id = 7, late = tracing::field::Empty);
        let _outer = outer.enter();
        outer.record("late", "yes");
        let inner = info_span!("inner");
        let _inner = inner.enter();
        info!(target: "t", "hi");
    };
    let text = lines(Style::Text, emit);
    assert_eq!(
        untimed(&text[0]).1,
        "  INFO outer{id=7 late=yes}:inner: t: hi"
    );
    let json = lines(Style::Json, emit);
    let value: Value = serde_json::from_str(&json[0]).expect("JSON");
    assert_eq!(
        value["spans"],
        json!([{"name": "outer", "id": 7, "late": "yes"}, {"name": "inner"}])
    );
    assert_eq!(value["fields"], json!({"message": "hi"}));
}

#[test]
fn the_log_bridge_fields_are_left_out() {
    let lines = lines(Style::Text, || {
        info!(log.line = 12, kept = 1, log.file = "x.rs", "from log");
    });
    assert_eq!(
        untimed(&lines[0]).1,
        "  INFO switchyard::logs::tests: from log kept=1"
    );
}

#[test]
fn timestamps_are_rfc3339_utc_with_microseconds() {
    let cases = [
        (0, 0, "1970-01-01T00:00:00.000000Z"),
        (951_782_400, 5, "2000-02-29T00:00:00.000005Z"),
        (951_868_799, 999_999, "2000-02-29T23:59:59.999999Z"),
        (951_868_800, 0, "2000-03-01T00:00:00.000000Z"),
        (1_709_164_800, 120_000, "2024-02-29T00:00:00.120000Z"),
        (1_795_813_979, 637_342, "2026-11-27T21:12:59.637342Z"),
        (4_102_444_799, 1, "2099-12-31T23:59:59.000001Z"),
        (253_402_300_799, 0, "9999-12-31T23:59:59.000000Z"),
        (253_402_300_800, 0, "10000-01-01T00:00:00.000000Z"),
    ];
    for (seconds, micros, expected) in cases {
        let time = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros);
        let mut line = String::new();
        timestamp(&mut line, time);
        assert_eq!(line, expected, "{seconds}s {micros}µs");
    }
    // Before the epoch (a clock set wrong): the epoch rather than garbage.
    let mut line = String::new();
    timestamp(&mut line, UNIX_EPOCH - Duration::from_secs(10));
    assert_eq!(line, "1970-01-01T00:00:00.000000Z");
    let mut now = String::new();
    timestamp(&mut now, SystemTime::now());
    assert!(now.starts_with("20"), "{now}");
}

/// What no line may carry as it is (written out here, not taken from the code under test).
fn unsafe_char(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Texts rich in what needs escaping: C0 and C1 controls, quotes, backslashes, separators.
fn texts() -> impl Strategy<Value = String> {
    let char = prop_oneof![
        any::<char>(),
        prop::char::range('\0', '\u{a0}'),
        Just('"'),
        Just('\\'),
        Just('\u{2028}'),
    ];
    prop::collection::vec(char, 0..40).prop_map(String::from_iter)
}

proptest! {
    /// Whatever the text, a text line stays one line free of control characters, and a JSON
    /// line parses back to the very same text.
    #[test]
    fn any_text_stays_on_one_line(value in texts()) {
        let text = lines(Style::Text, || info!(target: "t", field = %value, "{value}"));
        prop_assert_eq!(text.len(), 1);
        prop_assert!(!text[0].chars().any(unsafe_char), "{:?}", text[0]);
        let json = lines(Style::Json, || info!(target: "t", field = %value, "{value}"));
        prop_assert_eq!(json.len(), 1);
        prop_assert!(!json[0].chars().any(unsafe_char), "{:?}", json[0]);
        let parsed: Value = serde_json::from_str(&json[0]).map_err(|error| {
            TestCaseError::fail(format!("{error}: {}", json[0]))
        })?;
        prop_assert_eq!(&parsed["fields"]["message"], &json!(value));
        prop_assert_eq!(&parsed["fields"]["field"], &json!(value));
    }
}
