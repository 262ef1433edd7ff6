use super::*;
use crate::note::Signer;
use crate::{Checkpoint, canonical};

const ORIGIN: &str = "audit.test/log";

/// A log of `size` records, exported whole with checkpoints at `sizes` (the last the anchor).
struct Log {
    records: Vec<String>,
    leaves: Vec<Hash>,
    signer: Signer,
}

impl Log {
    fn new(size: u64) -> Log {
        let records: Vec<String> = (0..size)
            .map(|seq| {
                canonical(&serde_json::json!({
                    "seq": seq,
                    "event": "call",
                    "key": format!("key-{}", seq % 3),
                    "model": "gpt-4o",
                    "status": 200,
                    "note": "naïve \u{1F600} \"quoted\"",
                }))
                .expect("canonical")
            })
            .collect();
        let leaves = records
            .iter()
            .map(|r| merkle::leaf_hash(r.as_bytes()))
            .collect();
        Log {
            records,
            leaves,
            signer: Signer::generate("audit.test").expect("key"),
        }
    }

    fn range(&self, (start, end): (u64, u64)) -> Hash {
        merkle::root(&self.leaves[start as usize..end as usize])
    }

    fn export(
        &self,
        sizes: &[u64],
        seqs: impl Iterator<Item = u64>,
        complete: bool,
    ) -> Vec<String> {
        let anchor = *sizes.last().expect("a checkpoint");
        let header = Header {
            kind: "header".into(),
            format: FORMAT.into(),
            origin: ORIGIN.into(),
            anchor,
            complete,
            from_seq: 0,
            to_seq: anchor,
            since: None,
            until: None,
            retained_from: 0,
            team: None,
            key: None,
            event: None,
            exported_at: 0,
        };
        let mut lines = vec![serde_json::to_string(&header).expect("json")];
        for size in sizes {
            let checkpoint = Checkpoint {
                origin: ORIGIN.into(),
                size: *size,
                root: merkle::root(&self.leaves[..*size as usize]),
            };
            let note = checkpoint.sign(&self.signer).expect("signs");
            lines.push(serde_json::json!({"type": "checkpoint", "note": note}).to_string());
        }
        for pair in sizes.windows(2) {
            let ranges = merkle::consistency_ranges(pair[0], pair[1]).expect("sizes");
            let proof: Vec<Hash> = ranges.into_iter().map(|r| self.range(r)).collect();
            lines.push(
                serde_json::json!({"type": "consistency", "from": pair[0], "to": pair[1],
                    "proof": encode_proof(&proof)})
                .to_string(),
            );
        }
        for seq in seqs {
            let ranges = merkle::inclusion_ranges(seq, anchor).expect("seq");
            let proof: Vec<Hash> = ranges.into_iter().map(|r| self.range(r)).collect();
            lines.push(format!(
                r#"{{"type":"record","seq":{seq},"record":{},"proof":{}}}"#,
                self.records[seq as usize],
                serde_json::to_string(&encode_proof(&proof)).expect("json")
            ));
        }
        lines
    }

    fn check(&self, lines: &[String]) -> Report {
        verify(lines.join("\n").as_bytes(), &[self.signer.verifier()])
    }
}

fn messages(report: &Report) -> Vec<String> {
    report.problems.iter().map(ToString::to_string).collect()
}

#[test]
fn an_intact_export_holds() {
    let log = Log::new(40);
    let report = log.check(&log.export(&[5, 17, 32, 40], 0..40, true));
    assert!(report.ok(), "{:?}", messages(&report));
    assert_eq!(
        (report.records, report.checkpoints, report.span),
        (40, 4, Some((0, 39)))
    );
}

#[test]
fn one_flipped_byte_in_a_record_is_found_and_named() {
    let log = Log::new(20);
    let mut lines = log.export(&[20], 0..20, true);
    // Record 7 is line 9 (header, one checkpoint, then records from 0).
    lines[9] = lines[9].replacen("gpt-4o", "gpt-4p", 1);
    let report = log.check(&lines);
    assert_eq!(
        messages(&report),
        [
            "line 10: record 7: not in the log as checkpoint 20 signed it: changed, or not at its place"
        ]
    );
    // A byte that makes the record non-canonical is named as an edit too.
    let mut lines = log.export(&[20], 0..20, true);
    lines[9] = lines[9].replacen(r#""event":"call""#, r#""event": "call""#, 1);
    let report = log.check(&lines);
    assert!(messages(&report)[0].starts_with("line 10: record 7: the record is not in canonical"));
}

#[test]
fn a_deleted_record_is_named() {
    let log = Log::new(20);
    let mut lines = log.export(&[20], 0..20, true);
    lines.remove(7); // record 5
    let report = log.check(&lines);
    assert_eq!(messages(&report), ["record 5 is missing (before record 6)"]);
}

#[test]
fn two_records_swapped_are_named() {
    let log = Log::new(20);
    let mut lines = log.export(&[20], 0..20, true);
    lines.swap(5, 6); // records 3 and 4
    let report = log.check(&lines);
    assert_eq!(
        messages(&report),
        ["line 7: record 3: out of order: after record 4"]
    );
    // Swapped in place with their numbers kept: the records name where they belong.
    let mut lines = log.export(&[20], 0..20, true);
    let (three, four) = (log.records[3].clone(), log.records[4].clone());
    lines[5] = lines[5].replacen(&three, &four, 1);
    lines[6] = lines[6].replacen(&four, &three, 1);
    let report = log.check(&lines);
    let found = messages(&report);
    assert!(found.contains(&"line 6: record 3: the record says it is record 4: moved".to_owned()));
    assert!(found.contains(&"line 7: record 4: the record says it is record 3: moved".to_owned()));
}

#[test]
fn a_truncated_tail_is_named() {
    let log = Log::new(20);
    let lines = log.export(&[20], 0..16, true);
    let report = log.check(&lines);
    assert_eq!(
        messages(&report),
        ["records 16 to 19 are missing (at the end, which checkpoint 20 covers: truncated)"]
    );
}

#[test]
fn a_range_cut_short_is_named_and_records_outside_it_refused() {
    let log = Log::new(30);
    let mut lines = log.export(&[30], 10..18, true);
    let mut header: Header = serde_json::from_str(&lines[0]).expect("header");
    (header.from_seq, header.to_seq) = (10, 20);
    lines[0] = serde_json::to_string(&header).expect("json");
    assert_eq!(
        messages(&log.check(&lines)),
        ["records 18 to 19 are missing (at the end of the range)"]
    );
    let mut lines = log.export(&[30], 9..20, true);
    lines[0] = serde_json::to_string(&header).expect("json");
    assert_eq!(
        messages(&log.check(&lines)),
        ["line 3: record 9: outside the export's range (10 to 20)"]
    );
}

#[test]
fn a_filtered_export_may_skip_records_but_not_change_them() {
    let log = Log::new(30);
    let lines = log.export(&[10, 30], (0..30).filter(|seq| seq % 3 == 1), false);
    let report = log.check(&lines);
    assert!(report.ok(), "{:?}", messages(&report));
    assert_eq!(report.records, 10);
}

#[test]
fn checkpoints_by_another_key_or_a_rewritten_log_are_refused() {
    let log = Log::new(12);
    let lines = log.export(&[4, 12], 0..12, true);
    let stranger = Signer::generate("audit.test").expect("key");
    let report = verify(lines.join("\n").as_bytes(), &[stranger.verifier()]);
    assert!(!report.ok());
    assert!(
        messages(&report)
            .iter()
            .any(|m| m.contains("no checkpoint of size 12"))
    );

    // The same log rewritten after checkpoint 4: re-signed, it is no longer consistent.
    let mut rewritten = Log::new(12);
    rewritten.signer = Signer::parse(&log.signer.to_private_string()).expect("same key");
    rewritten.leaves[2] = merkle::leaf_hash(b"rewritten");
    let mut lines = log.export(&[4, 12], 0..12, true);
    let forged = rewritten.export(&[4, 12], 0..0, true);
    lines[1] = forged[1].clone(); // checkpoint 4 of the rewritten log
    let report = log.check(&lines);
    assert!(
        messages(&report)
            .iter()
            .any(|m| m.contains("checkpoints 4 and 12 are not consistent")),
        "{:?}",
        messages(&report)
    );
}

#[test]
fn garbage_is_reported_not_panicked_on() {
    let log = Log::new(3);
    for text in [
        "",
        "not json",
        "{\"type\":\"record\"}",
        "{\"type\":\"header\"}\n",
    ] {
        let report = verify(text.as_bytes(), &[log.signer.verifier()]);
        assert!(!report.ok(), "{text}");
    }
    let mut lines = log.export(&[3], 0..3, true);
    lines.push("{\"type\":\"record\",\"seq\":1,\"record\":{},\"proof\":[\"???\"]}".into());
    assert!(messages(&log.check(&lines)).contains(&"line 6: malformed record line".to_owned()));
}
