//! The Merkle tree of RFC 6962 / RFC 9162 (Certificate Transparency): SHA-256, leaves hashed
//! with a 0x00 prefix and interior nodes with 0x01, so a leaf can never pass for a node.
//!
//! A tree of `n` leaves is stored as its perfect subtrees: the node at `(level, index)` covers
//! leaves `index·2^level .. (index+1)·2^level`, and once complete it never changes. Any range
//! the proofs need is a few such nodes ([`subtrees`]) folded from the right ([`fold`]).
//! [`Frontier`] appends leaves and says which nodes each one completes; [`inclusion_ranges`]
//! and [`consistency_ranges`] say which ranges a proof is made of; [`verify_inclusion`] and
//! [`verify_consistency`] are RFC 9162's algorithms (§2.1.3.2, §2.1.4.2), written apart from
//! the generation so that each checks the other.

use ring::digest::{Context, SHA256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The address of a perfect subtree: its level (0 for a leaf) and its index at that level.
pub type Node = (u8, u64);

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The indices asked about do not fit the tree sizes.
    #[error("{0}")]
    Bounds(&'static str),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has the wrong length")]
    Length,
    /// The proof leads to another root.
    #[error("the proof leads to another root")]
    Root,
}

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut context = Context::new(&SHA256);
    for part in parts {
        context.update(part);
    }
    let mut hash = [0; 32];
    hash.copy_from_slice(context.finish().as_ref());
    hash
}

/// A leaf's hash: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

/// An interior node's hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    sha256(&[])
}

/// The largest power of two below `n` (`n` ≥ 2): where RFC 6962 splits a tree of `n` leaves.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The root of a tree with these leaf hashes, computed whole (RFC 6962's MTH).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = split(leaves.len() as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The perfect subtrees that make up leaves `start..end`, left to right, each as large as it
/// can be. For the ranges of an RFC 6962 tree (the whole tree, and every range a proof names)
/// the range's hash is these folded from the right ([`fold`]).
pub fn subtrees(start: u64, end: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut at = start;
    while at < end {
        let mut level = if at == 0 { 63 } else { at.trailing_zeros() };
        while level > 0 && (1u64 << level) > end - at {
            level -= 1;
        }
        nodes.push((level as u8, at >> level));
        at += 1 << level;
    }
    nodes
}

/// Folds the hashes of a range's subtrees (in [`subtrees`] order) into the range's hash.
pub fn fold(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return empty_root();
    };
    iter.fold(*last, |right, left| node_hash(left, &right))
}

/// The right edge of a tree: the hashes of the perfect subtrees of its leaves
/// ([`subtrees`]`(0, size)`), enough to append to it and to compute its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn empty() -> Frontier {
        Frontier {
            size: 0,
            hashes: Vec::new(),
        }
    }

    /// The frontier of a tree of `size` leaves, from the hashes of `subtrees(0, size)`; `None`
    /// when their number does not fit the size.
    pub fn new(size: u64, hashes: Vec<Hash>) -> Option<Frontier> {
        (hashes.len() == size.count_ones() as usize).then_some(Frontier { size, hashes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree's root.
    pub fn root(&self) -> Hash {
        fold(&self.hashes)
    }

    /// Appends a leaf: returns every node it completes, the leaf itself first.
    pub fn push(&mut self, leaf: Hash) -> Vec<(Node, Hash)> {
        let mut completed = vec![((0, self.size), leaf)];
        let (mut hash, mut level, mut index) = (leaf, 0u8, self.size);
        while index & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                break;
            };
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            completed.push(((level, index), hash));
        }
        self.hashes.push(hash);
        self.size += 1;
        completed
    }
}

/// The ranges of leaves whose hashes make the inclusion proof of leaf `index` in a tree of
/// `size` leaves (RFC 6962 §2.1.1, PATH), in the proof's order.
pub fn inclusion_ranges(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::Bounds("the leaf is not in the tree"));
    }
    let mut ranges = Vec::new();
    path(index, 0, size, &mut ranges);
    Ok(ranges)
}

fn path(index: u64, start: u64, end: u64, out: &mut Vec<(u64, u64)>) {
    if end - start <= 1 {
        return;
    }
    let k = split(end - start);
    if index - start < k {
        path(index, start, start + k, out);
        out.push((start + k, end));
    } else {
        path(index, start + k, end, out);
        out.push((start, start + k));
    }
}

/// The ranges of leaves whose hashes make the proof that the tree of `first` leaves is a
/// prefix of the tree of `second` (RFC 6962 §2.1.2, PROOF), in the proof's order.
pub fn consistency_ranges(first: u64, second: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if first == 0 || first > second {
        return Err(ProofError::Bounds(
            "a consistency proof needs 0 < first size <= second size",
        ));
    }
    let mut ranges = Vec::new();
    subproof(first, 0, second, true, &mut ranges);
    Ok(ranges)
}

fn subproof(m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<(u64, u64)>) {
    let n = end - start;
    if m == n {
        if !whole {
            out.push((start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, start + k, whole, out);
        out.push((start + k, end));
    } else {
        subproof(m - k, start + k, end, false, out);
        out.push((start, start + k));
    }
}

/// Checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is `root`
/// (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Bounds("the leaf is not in the tree"));
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::Length);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::Length);
    }
    if r == *root {
        Ok(())
    } else {
        Err(ProofError::Root)
    }
}

/// Checks that the tree of `first` leaves with root `first_root` is a prefix of the tree of
/// `second` leaves with root `second_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::Bounds(
            "the first tree is larger than the second",
        ));
    }
    if first == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::Length)
        };
    }
    if first == second {
        return match (proof.is_empty(), first_root == second_root) {
            (false, _) => Err(ProofError::Length),
            (true, true) => Ok(()),
            (true, false) => Err(ProofError::Root),
        };
    }
    let mut path = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let Some((seed, rest)) = path.split_first() else {
        return Err(ProofError::Length);
    };
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if s == 0 {
            return Err(ProofError::Length);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::Length);
    }
    if fr == *first_root && sr == *second_root {
        Ok(())
    } else {
        Err(ProofError::Root)
    }
}

#[cfg(test)]
mod tests;
