use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// What serde_json makes of `text` as an object: its members, or `None` if it refuses it.
fn serde_object(text: &str) -> Option<Map<String, Value>> {
    serde_json::from_str(text).ok()
}

/// The scanner may refuse what serde_json accepts (the caller then asks serde_json), but what
/// it accepts serde_json must accept too, with the same value for every wanted member.
fn assert_sound(text: &str) {
    const KEYS: [&str; 3] = ["usage", "choices", "a"];
    let Some(found) = members(text, KEYS) else {
        return;
    };
    let Some(object) = serde_object(text) else {
        panic!("the scanner accepted what serde_json refuses: {text:?}");
    };
    for (key, raw) in KEYS.iter().zip(found) {
        let expected = object.get(*key);
        let got = raw.map(|raw| serde_json::from_str::<Value>(raw).expect("a member's text"));
        assert_eq!(got.as_ref(), expected, "member {key} of {text:?}");
    }
}

#[test]
fn finds_the_wanted_members_of_an_openai_answer() {
    let text = r#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi \"there\"\n"}}],
        "usage" : {"prompt_tokens":5,"completion_tokens":2} , "service_tier":null}"#;
    let [usage, choices, missing] = members(text, ["usage", "choices", "error"]).unwrap();
    assert_eq!(usage, Some(r#"{"prompt_tokens":5,"completion_tokens":2}"#));
    assert!(choices.unwrap().starts_with("[{\"index\":0"));
    assert!(choices.unwrap().ends_with("}}]"));
    assert_eq!(missing, None);
}

#[test]
fn accepts_every_kind_of_value() {
    for text in [
        "{}",
        " \t\r\n{ } \n",
        r#"{"a":[]}"#,
        r#"{"a":[1,-0,0.5,-12.25e+3,4E-2,1e308]}"#,
        r#"{"a":{"b":{"c":[true,false,null,"x"]}}}"#,
        r#"{"a":"\u00e9\ud83d\ude00 \\ \/ \b\f\n\r\t","b":"é😀"}"#,
        r#"{"a":"a long string of more than eight bytes, split across words"}"#,
        &format!(r#"{{"a":{}1{}}}"#, "[".repeat(64), "]".repeat(64)),
    ] {
        assert!(members(text, ["a"]).is_some(), "refused {text:?}");
        assert_sound(text);
    }
}

#[test]
fn refuses_what_json_forbids() {
    for text in [
        "",
        "[]",
        "1",
        r#""a""#,
        "{",
        r#"{"a":1"#,
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        r#"{a:1}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":[1 2]}"#,
        r#"{"a":{"b":1]}"#,
        r#"{"a":[1}"#,
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":-}"#,
        r#"{"a":+1}"#,
        r#"{"a":1e400}"#,
        r#"{"a":tru}"#,
        r#"{"a":nul}"#,
        r#"{"a":NaN}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12g4"}"#,
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"line\nbreak\"}",
        r#"{"a":"unterminated}"#,
        r#"{"a":1} x"#,
        r#"{"a":1}{}"#,
    ] {
        assert!(members(text, ["a"]).is_none(), "accepted {text:?}");
        assert!(serde_object(text).is_none(), "serde_json accepts {text:?}");
    }
}

#[test]
fn leaves_escaped_keys_and_repeated_wanted_keys_to_serde() {
    // `"\u0061"` is `"a"`: only a decoder can tell.
    assert!(members(r#"{"\u0061":1}"#, ["a"]).is_none());
    assert!(members(r#"{"a":1,"a":2}"#, ["a"]).is_none());
    // A repeated key nobody asked for is fine.
    assert!(members(r#"{"b":1,"b":2}"#, ["a"]).is_some());
}

#[test]
fn leaves_deep_nesting_to_serde() {
    let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(65), "]".repeat(65));
    assert!(members(&deep, ["a"]).is_none());
    assert!(serde_object(&deep).is_some());
}

#[test]
fn refuses_nesting_serde_json_refuses() {
    let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    assert!(members(&deep, ["a"]).is_none());
    assert!(serde_object(&deep).is_none());
}

#[test]
fn finds_the_first_special_byte_of_a_word_exactly() {
    for position in 0..8 {
        for special in [b'"', b'\\', 0x00, 0x1f] {
            // Specials after the first may be flagged falsely; the first never is.
            let mut word = *b"abcdefgh";
            word[position] = special;
            word[7] = special;
            let mask = special_bytes(u64::from_le_bytes(word));
            assert_eq!(mask.trailing_zeros() / 8, position as u32, "{special:#x}");
        }
    }
    assert_eq!(special_bytes(u64::from_le_bytes(*b"abc \x7f\xc3\xa9!")), 0);
}

/// JSON values of every kind, a few levels deep.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\"\\\\\u{0}-\u{1f}é😀 ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("(a|usage|choices|[a-z]{1,3})", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Bytes that matter to JSON's grammar, for mutations.
const INTERESTING: &[u8] = b"{}[]:,\"\\ \n0123456789-+.eEtrufalsn\x01u";

proptest! {
    #[test]
    fn accepts_every_serialized_object(
        members_of in proptest::collection::btree_map("(a|usage|choices|[a-z]{1,3})", value(), 0..6),
        pretty in any::<bool>(),
    ) {
        let object = Value::Object(members_of.into_iter().collect());
        let text = if pretty {
            serde_json::to_string_pretty(&object).unwrap()
        } else {
            serde_json::to_string(&object).unwrap()
        };
        prop_assert!(members(&text, ["usage", "choices", "a"]).is_some(), "refused {}", text);
        assert_sound(&text);
    }

    #[test]
    fn never_accepts_what_serde_json_refuses(
        object in value(),
        edits in proptest::collection::vec((any::<usize>(), 0..3u8, any::<prop::sample::Index>()), 1..4),
    ) {
        let mut bytes = serde_json::to_vec(&Value::Object(
            [("a".to_owned(), object)].into_iter().collect(),
        )).unwrap();
        for (at, kind, byte) in edits {
            let at = at % (bytes.len() + 1);
            let byte = INTERESTING[byte.index(INTERESTING.len())];
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            assert_sound(text);
        }
    }
}
