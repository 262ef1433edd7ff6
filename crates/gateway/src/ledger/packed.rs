//! A spend record packed into one buffer for the writer's queue.
//!
//! A record is made on the worker that served the call and written by the background writer.
//! Queued as a `SpendRecord`, its five or more strings would be freed on the writer's thread;
//! memory a worker allocated and another thread frees goes back to the worker's arena under
//! its lock and costs the worker more on its next allocations (about a microsecond a call at
//! concurrency 64, measured with `perf`). Packed, the record is one buffer, written from what
//! the call's context already holds ([`SpendRow`], borrowed: nothing copied to be thrown away),
//! and the writer reads it back as a `SpendRow` borrowing from the buffer.
//!
//! The layout is private to this process (the queue never leaves it): numbers as LEB128
//! varints (signed ones zigzagged), strings as their length then their bytes, a missing
//! optional value as 0 and a present one as 1 then the value, lists as their length then their
//! items, the four flags as one byte.

use switchyard_store::{GuardVerdict, SpendRow};

/// One record, packed.
#[derive(Debug)]
pub struct Packed(Vec<u8>);

impl Packed {
    /// `record`, packed.
    pub fn of(record: &SpendRow<'_>) -> Packed {
        let text: usize = [
            record.request_id.len(),
            record.model.len(),
            record.kind.len(),
            record.key_id.map_or(0, str::len),
            record.team_id.map_or(0, str::len),
            record.user_id.map_or(0, str::len),
            record.deployment.map_or(0, str::len),
        ]
        .iter()
        .sum::<usize>()
            + record.tags.iter().map(|tag| tag.len()).sum::<usize>();
        let mut out = Writer(Vec::with_capacity(96 + text + 48 * record.guards.len()));
        out.string(record.request_id);
        out.signed(record.at);
        out.optional(record.key_id);
        out.optional(record.team_id);
        out.optional(record.user_id);
        out.string(record.model);
        out.optional(record.deployment);
        out.string(record.kind);
        out.unsigned(record.tags.len() as u64);
        for tag in &record.tags {
            out.string(tag);
        }
        for count in [
            record.prompt_tokens,
            record.completion_tokens,
            record.cache_read_tokens,
            record.cache_write_tokens,
            record.reasoning_tokens,
        ] {
            out.unsigned(count);
        }
        out.signed(record.cost_nanos);
        out.0.push(
            u8::from(record.estimated)
                | u8::from(record.unpriced) << 1
                | u8::from(record.cache_hit) << 2
                | u8::from(record.stream) << 3,
        );
        out.unsigned(u64::from(record.status));
        out.unsigned(u64::from(record.attempts));
        out.signed(record.latency_ms);
        match record.ttft_ms {
            Some(ttft) => {
                out.0.push(1);
                out.signed(ttft);
            }
            None => out.0.push(0),
        }
        out.unsigned(record.guards.len() as u64);
        for verdict in &record.guards {
            out.string(&verdict.entity);
            out.string(&verdict.action);
            out.unsigned(u64::from(verdict.count));
            out.optional(verdict.detail.as_deref());
        }
        Packed(out.0)
    }

    /// The record back, its text borrowed from the bytes (`None` only if they were not
    /// written by [`Packed::of`]).
    pub fn view(&self) -> Option<SpendRow<'_>> {
        let mut input = Reader(&self.0);
        let request_id = input.string()?;
        let at = input.signed()?;
        let key_id = input.optional()?;
        let team_id = input.optional()?;
        let user_id = input.optional()?;
        let model = input.string()?;
        let deployment = input.optional()?;
        let kind = input.string()?;
        let tags = (0..input.length()?)
            .map(|_| input.string())
            .collect::<Option<Vec<_>>>()?;
        let prompt_tokens = input.unsigned()?;
        let completion_tokens = input.unsigned()?;
        let cache_read_tokens = input.unsigned()?;
        let cache_write_tokens = input.unsigned()?;
        let reasoning_tokens = input.unsigned()?;
        let cost_nanos = input.signed()?;
        let flags = input.byte()?;
        let status = u16::try_from(input.unsigned()?).ok()?;
        let attempts = u32::try_from(input.unsigned()?).ok()?;
        let latency_ms = input.signed()?;
        let ttft_ms = match input.byte()? {
            0 => None,
            _ => Some(input.signed()?),
        };
        let guards = (0..input.length()?)
            .map(|_| {
                Some(GuardVerdict {
                    entity: input.string()?.to_owned(),
                    action: input.string()?.to_owned(),
                    count: u32::try_from(input.unsigned()?).ok()?,
                    detail: input.optional()?.map(str::to_owned),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        input.0.is_empty().then_some(SpendRow {
            request_id,
            at,
            key_id,
            team_id,
            user_id,
            model,
            deployment,
            kind,
            tags,
            prompt_tokens,
            completion_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
            cost_nanos,
            estimated: flags & 1 != 0,
            unpriced: flags & 2 != 0,
            cache_hit: flags & 4 != 0,
            stream: flags & 8 != 0,
            status,
            attempts,
            latency_ms,
            ttft_ms,
            guards,
        })
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn unsigned(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value & 0x7f) as u8 | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn signed(&mut self, value: i64) {
        self.unsigned(((value << 1) ^ (value >> 63)) as u64);
    }

    fn string(&mut self, value: &str) {
        self.unsigned(value.len() as u64);
        self.0.extend_from_slice(value.as_bytes());
    }

    fn optional(&mut self, value: Option<&str>) {
        match value {
            Some(value) => {
                self.0.push(1);
                self.string(value);
            }
            None => self.0.push(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    fn unsigned(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let zigzag = self.unsigned()?;
        Some((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
    }

    fn length(&mut self) -> Option<usize> {
        usize::try_from(self.unsigned()?).ok()
    }

    fn string(&mut self) -> Option<&'a str> {
        let length = self.length()?;
        if length > self.0.len() {
            return None;
        }
        let (text, rest) = self.0.split_at(length);
        self.0 = rest;
        std::str::from_utf8(text).ok()
    }

    fn optional(&mut self) -> Option<Option<&'a str>> {
        match self.byte()? {
            0 => Some(None),
            _ => self.string().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use switchyard_store::SpendRecord;

    use super::*;

    #[test]
    fn a_record_comes_back_as_it_went_in() {
        let full = SpendRecord {
            seq: 0,
            request_id: "req \u{0} é 𝄞".to_owned(),
            at: i64::MIN,
            key_id: Some("key_1".to_owned()),
            team_id: Some(String::new()),
            user_id: Some("u".repeat(300)),
            model: "gpt".to_owned(),
            deployment: Some("openai/gpt-4o".to_owned()),
            kind: "chat".to_owned(),
            tags: vec!["a".to_owned(), String::new(), "ü".repeat(200)],
            prompt_tokens: u64::MAX,
            completion_tokens: 0,
            cache_read_tokens: 127,
            cache_write_tokens: 128,
            reasoning_tokens: 1 << 35,
            cost_nanos: -1,
            estimated: true,
            unpriced: false,
            cache_hit: true,
            stream: false,
            status: u16::MAX,
            attempts: u32::MAX,
            latency_ms: i64::MAX,
            ttft_ms: Some(0),
            guards: vec![
                GuardVerdict {
                    entity: "EMAIL".to_owned(),
                    action: "tokenize".to_owned(),
                    count: 3,
                    detail: None,
                },
                GuardVerdict {
                    entity: "PROMPT_INJECTION".to_owned(),
                    action: "flag".to_owned(),
                    count: u32::MAX,
                    detail: Some("score 0.97 tier phrases".to_owned()),
                },
            ],
        };
        let row = SpendRow::from(&full);
        assert_eq!(Packed::of(&row).view(), Some(row));
        let bare = SpendRecord {
            model: "m".to_owned(),
            ..SpendRecord::default()
        };
        let row = SpendRow::from(&bare);
        assert_eq!(Packed::of(&row).view(), Some(row));
    }

    #[test]
    fn bytes_it_did_not_write_are_refused() {
        let record = SpendRecord {
            request_id: "req_1".to_owned(),
            model: "gpt".to_owned(),
            ..SpendRecord::default()
        };
        let packed = Packed::of(&SpendRow::from(&record));
        for cut in 0..packed.0.len() {
            assert_eq!(
                Packed(packed.0[..cut].to_vec()).view(),
                None,
                "cut at {cut}"
            );
        }
        let mut longer = packed.0.clone();
        longer.push(0);
        assert_eq!(Packed(longer).view(), None);
        assert_eq!(Packed(vec![0xff; 11]).view(), None);
    }
}
