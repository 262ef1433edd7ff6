//! Alternating turns, the conversation shape Anthropic, Gemini and Bedrock require: consecutive
//! messages of one role merge into one turn, and the results of a turn's tool calls open the
//! turn after it, whatever a client put between them.

use serde_json::Value;

/// Turns being assembled, each a role and its blocks (or parts).
#[derive(Debug, Default)]
pub(crate) struct Turns {
    turns: Vec<(&'static str, Vec<Value>)>,
}

impl Turns {
    /// Adds `blocks` as a `role` turn, merged into the previous turn if that has the same role;
    /// no blocks add nothing.
    pub(crate) fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => self.turns.push((role, blocks)),
        }
    }

    /// The turns, with the blocks `is_result` picks (tool results) moved to the front of each
    /// turn, in their order.
    pub(crate) fn finish(
        self,
        is_result: impl Fn(&Value) -> bool,
    ) -> impl Iterator<Item = (&'static str, Vec<Value>)> {
        self.turns.into_iter().map(move |(role, mut blocks)| {
            blocks.sort_by_key(|block| !is_result(block));
            (role, blocks)
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn same_role_turns_merge_and_results_lead() {
        let mut turns = Turns::default();
        turns.push("user", vec![json!({"text": "a"})]);
        turns.push("assistant", Vec::new());
        turns.push("user", vec![json!({"result": 1})]);
        turns.push("assistant", vec![json!({"text": "b"})]);
        let turns: Vec<_> = turns
            .finish(|block| block.get("result").is_some())
            .collect();
        assert_eq!(
            turns,
            vec![
                ("user", vec![json!({"result": 1}), json!({"text": "a"})]),
                ("assistant", vec![json!({"text": "b"})]),
            ]
        );
    }
}
