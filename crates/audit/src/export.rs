//! The export: JSON lines that let anyone check the log offline with only its public keys.
//!
//! ```text
//! {"type":"header","format":"switchyard-audit-export/1","origin":…,"anchor":N,"complete":true,…}
//! {"type":"checkpoint","note":"<signed note>"}                     each checkpoint included
//! {"type":"consistency","from":M,"to":N,"proof":["<base64>",…]}   between consecutive ones
//! {"type":"record","seq":S,"record":{…},"proof":["<base64>",…]}   inclusion under the anchor
//! ```
//!
//! [`verify`] checks every signature, every proof and the order of the records, and on a
//! complete export (no filter by team, key or event) that no record is missing; it reports
//! every problem with its line and record.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::checkpoint::Checkpoint;
use crate::merkle::{self, Hash};
use crate::note::Verifier;

/// The format's name and version, in the header.
pub const FORMAT: &str = "switchyard-audit-export/1";

/// Problems reported at most; past them the check stops.
const MAX_PROBLEMS: usize = 100;

/// The first line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `"header"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// [`FORMAT`].
    pub format: String,
    /// The log's name, as its checkpoints say it.
    pub origin: String,
    /// The size of the checkpoint every record's proof is made against.
    pub anchor: u64,
    /// No filter by team, key or event: every record of the range is in the export.
    pub complete: bool,
    /// The range of records the export covers: from this one…
    pub from_seq: u64,
    /// …up to this one, not included (at most the anchor).
    pub to_seq: u64,
    /// The time the range was asked from (Unix milliseconds): it starts at the first record
    /// written at or after it.
    pub since: Option<i64>,
    /// The time the range was asked until: it ends after the last record written before it.
    pub until: Option<i64>,
    /// The first record the store still held (older ones were deleted by retention).
    pub retained_from: u64,
    /// Only this team's records.
    pub team: Option<String>,
    /// Only this key's records.
    pub key: Option<String>,
    /// Only records of this event (`call`, `admin`).
    pub event: Option<String>,
    /// When the export was made (Unix milliseconds).
    pub exported_at: i64,
}

/// A checkpoint line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointLine {
    /// Always `"checkpoint"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The signed note.
    pub note: String,
}

/// A consistency proof between two checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsistencyLine {
    /// Always `"consistency"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The smaller checkpoint's size.
    pub from: u64,
    /// The larger checkpoint's size.
    pub to: u64,
    /// The proof's hashes, base64.
    pub proof: Vec<String>,
}

/// A record with its inclusion proof under the anchor.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordLine {
    /// Always `"record"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The record's place in the log.
    pub seq: u64,
    /// The record as stored: canonical JSON, the leaf's data byte for byte.
    pub record: Box<RawValue>,
    /// The proof's hashes, base64.
    pub proof: Vec<String>,
}

/// Hashes as the export writes them.
pub fn encode_proof(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|hash| STANDARD.encode(hash)).collect()
}

fn decode_proof(proof: &[String]) -> Option<Vec<Hash>> {
    proof
        .iter()
        .map(|hash| STANDARD.decode(hash).ok()?.try_into().ok())
        .collect()
}

/// Something wrong in an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The export's line (from 1), when one line is at fault.
    pub line: Option<usize>,
    /// The record concerned, when one is.
    pub seq: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(seq) = self.seq {
            write!(f, "record {seq}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The header, when it could be read.
    pub header: Option<Header>,
    /// Records read.
    pub records: u64,
    /// Checkpoints whose signature holds.
    pub checkpoints: u64,
    /// The first and last record read.
    pub span: Option<(u64, u64)>,
    /// Everything wrong (empty: the export holds).
    pub problems: Vec<Problem>,
}

impl Report {
    fn problem(&mut self, line: Option<usize>, seq: Option<u64>, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                line,
                seq,
                message: message.into(),
            });
        }
    }

    /// The export holds.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A record is canonical JSON (RFC 8785) with its own place in it: what it says its `seq` is.
fn record_seq(raw: &str) -> Result<Option<u64>, &'static str> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| "the record is not JSON")?;
    let canonical = crate::canonical::to_string(&value).map_err(|_| "the record is not JSON")?;
    if canonical != raw {
        return Err("the record is not in canonical form: it was edited");
    }
    Ok(value.get("seq").and_then(serde_json::Value::as_u64))
}

#[derive(Debug, Deserialize)]
struct Tag {
    #[serde(rename = "type")]
    kind: String,
}

/// Checks an export against `verifiers`, the log's public keys (every key that signed one of
/// its checkpoints; keys found in the export itself are never trusted).
pub fn verify(input: impl BufRead, verifiers: &[Verifier]) -> Report {
    let mut report = Report::default();
    // Checkpoints by size: the root and the line.
    let mut checkpoints: BTreeMap<u64, (Hash, usize)> = BTreeMap::new();
    let mut consistency: BTreeMap<(u64, u64), (Vec<Hash>, usize)> = BTreeMap::new();
    let mut records: Vec<(usize, u64, Hash, Vec<Hash>)> = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                report.problem(Some(number), None, format!("unreadable: {error}"));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let kind = match serde_json::from_str::<Tag>(&line) {
            Ok(tag) => tag.kind,
            Err(_) => {
                report.problem(Some(number), None, "not a line of an export");
                continue;
            }
        };
        match (kind.as_str(), &report.header) {
            ("header", None) if number == 1 => match serde_json::from_str::<Header>(&line) {
                Ok(header) if header.format == FORMAT => report.header = Some(header),
                Ok(header) => {
                    report.problem(
                        Some(number),
                        None,
                        format!("unknown format {}", header.format),
                    );
                    return report;
                }
                Err(error) => {
                    report.problem(Some(number), None, format!("malformed header: {error}"));
                    return report;
                }
            },
            (_, None) => {
                report.problem(
                    Some(number),
                    None,
                    "the export does not start with its header",
                );
                return report;
            }
            ("header", Some(_)) => report.problem(Some(number), None, "a second header"),
            ("checkpoint", Some(header)) => {
                let origin = header.origin.clone();
                let Ok(line) = serde_json::from_str::<CheckpointLine>(&line) else {
                    report.problem(Some(number), None, "malformed checkpoint line");
                    continue;
                };
                match Checkpoint::open(&line.note, verifiers) {
                    Ok((checkpoint, _)) if checkpoint.origin != origin => report.problem(
                        Some(number),
                        None,
                        format!("a checkpoint of another log ({})", checkpoint.origin),
                    ),
                    Ok((checkpoint, _)) => {
                        report.checkpoints += 1;
                        match checkpoints.get(&checkpoint.size) {
                            Some((root, _)) if *root != checkpoint.root => report.problem(
                                Some(number),
                                None,
                                format!(
                                    "two signed checkpoints of size {} disagree on the root: \
                                     the log was rewritten",
                                    checkpoint.size
                                ),
                            ),
                            _ => {
                                checkpoints.insert(checkpoint.size, (checkpoint.root, number));
                            }
                        }
                    }
                    Err(error) => {
                        report.problem(Some(number), None, format!("checkpoint refused: {error}"))
                    }
                }
            }
            ("consistency", Some(_)) => {
                match serde_json::from_str::<ConsistencyLine>(&line)
                    .ok()
                    .and_then(|line| Some((line.from, line.to, decode_proof(&line.proof)?)))
                {
                    Some((from, to, proof)) => {
                        consistency.insert((from, to), (proof, number));
                    }
                    None => report.problem(Some(number), None, "malformed consistency proof"),
                }
            }
            ("record", Some(_)) => {
                let parsed = serde_json::from_str::<RecordLine>(&line)
                    .ok()
                    .and_then(|line| Some((line.seq, line.record, decode_proof(&line.proof)?)));
                let Some((seq, record, proof)) = parsed else {
                    report.problem(Some(number), None, "malformed record line");
                    continue;
                };
                match record_seq(record.get()) {
                    Ok(Some(own)) if own == seq => {}
                    Ok(Some(own)) => report.problem(
                        Some(number),
                        Some(seq),
                        format!("the record says it is record {own}: moved"),
                    ),
                    Ok(None) => report.problem(Some(number), Some(seq), "the record has no seq"),
                    Err(message) => report.problem(Some(number), Some(seq), message),
                }
                let leaf = merkle::leaf_hash(record.get().as_bytes());
                records.push((number, seq, leaf, proof));
            }
            (other, Some(_)) => {
                report.problem(Some(number), None, format!("unknown line type {other}"));
            }
        }
    }
    let Some(header) = report.header.clone() else {
        report.problem(None, None, "the export is empty");
        return report;
    };
    check_checkpoints(&mut report, &header, &checkpoints, &consistency);
    let Some(&(anchor_root, _)) = checkpoints.get(&header.anchor) else {
        report.problem(
            None,
            None,
            format!(
                "no checkpoint of size {} signed by a key given: nothing can be proven",
                header.anchor
            ),
        );
        return report;
    };
    if header.from_seq > header.to_seq || header.to_seq > header.anchor {
        report.problem(
            Some(1),
            None,
            format!(
                "the header's range ({} to {}) does not fit under the anchor ({})",
                header.from_seq, header.to_seq, header.anchor
            ),
        );
    }
    check_records(&mut report, &header, anchor_root, &records);
    report
}

/// Each checkpoint is consistent with the next larger one.
fn check_checkpoints(
    report: &mut Report,
    header: &Header,
    checkpoints: &BTreeMap<u64, (Hash, usize)>,
    consistency: &BTreeMap<(u64, u64), (Vec<Hash>, usize)>,
) {
    if let Some((&largest, &(_, line))) = checkpoints.last_key_value()
        && largest > header.anchor
    {
        report.problem(
            Some(line),
            None,
            format!(
                "a checkpoint of size {largest} is past the export's anchor ({})",
                header.anchor
            ),
        );
    }
    let sizes: Vec<(&u64, &(Hash, usize))> = checkpoints.iter().collect();
    for pair in sizes.windows(2) {
        let [(&from, &(from_root, _)), (&to, &(to_root, to_line))] = [pair[0], pair[1]];
        if from == 0 {
            continue;
        }
        match consistency.get(&(from, to)) {
            None => report.problem(
                Some(to_line),
                None,
                format!("no consistency proof from checkpoint {from} to {to}"),
            ),
            Some((proof, line)) => {
                if merkle::verify_consistency(from, to, proof, &from_root, &to_root).is_err() {
                    report.problem(
                        Some(*line),
                        None,
                        format!(
                            "checkpoints {from} and {to} are not consistent: the log was \
                             rewritten between them"
                        ),
                    );
                }
            }
        }
    }
}

/// Every record is in the tree at its place, in order; a complete export misses none.
fn check_records(
    report: &mut Report,
    header: &Header,
    anchor_root: Hash,
    records: &[(usize, u64, Hash, Vec<Hash>)],
) {
    let mut highest: Option<u64> = None;
    let mut seen = std::collections::BTreeSet::new();
    for (line, seq, leaf, proof) in records {
        let (line, seq) = (*line, *seq);
        report.records += 1;
        if seq >= header.anchor {
            report.problem(
                Some(line),
                Some(seq),
                format!("past the anchor checkpoint ({})", header.anchor),
            );
            continue;
        }
        if !(header.from_seq..header.to_seq).contains(&seq) {
            report.problem(
                Some(line),
                Some(seq),
                format!(
                    "outside the export's range ({} to {})",
                    header.from_seq, header.to_seq
                ),
            );
            continue;
        }
        if !seen.insert(seq) {
            report.problem(Some(line), Some(seq), "appears twice");
            continue;
        }
        match highest {
            Some(before) if seq < before => report.problem(
                Some(line),
                Some(seq),
                format!("out of order: after record {before}"),
            ),
            _ => highest = Some(seq),
        }
        if merkle::verify_inclusion(seq, header.anchor, leaf, proof, &anchor_root).is_err() {
            report.problem(
                Some(line),
                Some(seq),
                format!(
                    "not in the log as checkpoint {} signed it: changed, or not at its place",
                    header.anchor
                ),
            );
        }
    }
    report.span = seen
        .first()
        .zip(seen.last())
        .map(|(first, last)| (*first, *last));
    if header.complete {
        let mut expected = seen.first().copied();
        for &seq in &seen {
            if let Some(next) = expected
                && seq > next
            {
                report.problem(
                    None,
                    None,
                    missing(next, seq - 1, &format!("before record {seq}")),
                );
            }
            expected = Some(seq + 1);
        }
    }
    if !header.complete || header.from_seq >= header.to_seq {
        return;
    }
    match report.span {
        None => report.problem(
            None,
            None,
            missing(header.from_seq, header.to_seq - 1, "the whole range"),
        ),
        Some((first, last)) => {
            if first > header.from_seq {
                report.problem(
                    None,
                    None,
                    missing(header.from_seq, first - 1, "at the start of the range"),
                );
            }
            if last + 1 < header.to_seq {
                let place = if header.to_seq == header.anchor {
                    format!(
                        "at the end, which checkpoint {} covers: truncated",
                        header.anchor
                    )
                } else {
                    "at the end of the range".to_owned()
                };
                report.problem(None, None, missing(last + 1, header.to_seq - 1, &place));
            }
        }
    }
}

fn missing(first: u64, last: u64, place: &str) -> String {
    if first == last {
        format!("record {first} is missing ({place})")
    } else {
        format!("records {first} to {last} are missing ({place})")
    }
}

#[cfg(test)]
mod tests;
