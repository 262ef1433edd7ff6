//! Checkpoints (C2SP `tlog-checkpoint`): the log's origin, its size and its root, one per
//! line, signed as a note. A checkpoint commits the log to every record it covers: a record
//! changed, removed or moved afterwards no longer proves its inclusion under it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;
use crate::note::{self, NoteError, Signer, Verifier};

/// A tree head: what a checkpoint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name (`audit.origin`), the note's first line.
    pub origin: String,
    /// Records in the log.
    pub size: u64,
    /// The root of the tree of those records.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text: origin, size and root, each on its line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// The checkpoint signed by `signer`, as a signed note.
    pub fn sign(&self, signer: &Signer) -> Result<String, NoteError> {
        signer.sign(&self.body())
    }

    /// Reads a checkpoint's text (extension lines after the root are allowed and ignored).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Malformed(
                "a checkpoint has origin, size and root",
            ));
        };
        if origin.is_empty() {
            return Err(NoteError::Malformed("the checkpoint's origin is empty"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(NoteError::Malformed(
                "the checkpoint's size is not a number",
            ));
        }
        let size = size
            .parse()
            .map_err(|_| NoteError::Malformed("the checkpoint's size is too large"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(NoteError::Malformed(
                "the checkpoint's root is not a base64 hash",
            ))?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Opens a signed checkpoint with `verifiers`: the checkpoint and the key that signed it.
    pub fn open<'a>(
        note: &str,
        verifiers: &'a [Verifier],
    ) -> Result<(Checkpoint, &'a Verifier), NoteError> {
        let (text, verifier) = note::open(note, verifiers)?;
        Ok((Checkpoint::parse(&text)?, verifier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_opens_to_itself_and_an_edited_one_does_not() {
        let signer = Signer::generate("audit.example").expect("key");
        let checkpoint = Checkpoint {
            origin: "audit.example/log".to_owned(),
            size: 1234,
            root: [7; 32],
        };
        let note = checkpoint.sign(&signer).expect("signs");
        assert!(note.starts_with("audit.example/log\n1234\nBwcH"));
        let verifiers = [signer.verifier()];
        let (opened, _) = Checkpoint::open(&note, &verifiers).expect("opens");
        assert_eq!(opened, checkpoint);
        let grown = note.replacen("1234", "1235", 1);
        assert!(Checkpoint::open(&grown, &verifiers).is_err());
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        for text in [
            "",
            "origin\n",
            "origin\n12\n",
            "\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n012\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n12\nBwcH\n",
        ] {
            assert!(Checkpoint::parse(text).is_err(), "{text:?}");
        }
        let ok = "origin\n0\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\nextension\n";
        assert_eq!(Checkpoint::parse(ok).map(|c| c.size), Ok(0));
    }
}
