//! The semantic cache: a call whose last user message means what an earlier one's did, in the
//! same scope, gets that call's kept answer. The scope (tenant, model group, namespace, guard
//! policy, the earlier messages, the system prompt and every parameter) is an exact filter,
//! never part of the similarity; within it the last user message's vector is compared with
//! those of kept answers (exact cosine), and a candidate above the threshold is served only if
//! the two messages agree on their numbers, names and negations ([`verify`]).
//!
//! # Layout
//! - [`Embedder`]: text to a unit vector; [`minilm`] runs a local MiniLM-class model (feature
//!   `semantic-cache`), [`through`] asks one of the gateway's own embeddings groups.
//! - [`Index`]: the vectors per scope, bounded, searched exactly.
//! - [`verify`]: the checks a candidate must pass.

#[cfg(feature = "semantic-cache")]
pub mod minilm;
pub mod through;
pub mod verify;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use super::key::Key;

/// An embedder failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("embedding: {0}")]
pub struct EmbedError(pub String);

/// Text to a unit vector. Blocking CPU work: called off the request's worker.
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// What it is (the model's folder name, the group's name).
    fn name(&self) -> &str;
    /// `text`'s vector, of unit length.
    fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError>;
}

/// The dot product of two vectors of the same length (their cosine, when both have unit
/// length). Eight lanes at a time, so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_chunks.zip(b_chunks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// A kept answer's place in the index.
#[derive(Debug, Clone)]
pub struct Item {
    /// The exact cache's key of the answer.
    pub key: Key,
    /// The last user message it answered.
    pub text: Arc<str>,
}

/// One scope's vectors, row after row, their items, and their 64-bit sign sketches.
#[derive(Debug, Default)]
struct Rows {
    vectors: Vec<f32>,
    items: Vec<Item>,
    signs: Vec<u64>,
}

/// Rows whose cosine a large scope's search computes: those whose sketches are nearest.
const SHORTLIST: usize = 1024;

/// 64 random hyperplanes of `dimensions` (the same every run): a vector's sketch has a bit per
/// plane, set on its positive side, so two vectors at angle θ differ in about 64·θ/π bits.
fn planes(dimensions: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    // A sum of four uniforms is near enough to a Gaussian for directions to be uniform.
    (0..64 * dimensions)
        .map(|_| uniform() + uniform() + uniform() + uniform())
        .collect()
}

/// `vector`'s sketch against `planes`.
fn sketch(planes: &[f32], vector: &[f32]) -> u64 {
    planes
        .chunks_exact(vector.len())
        .enumerate()
        .fold(0, |sign, (bit, plane)| {
            if dot(plane, vector) >= 0.0 {
                sign | (1 << bit)
            } else {
                sign
            }
        })
}

/// A candidate: an item and its similarity.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The item.
    pub item: Item,
    /// Cosine similarity to the query.
    pub similarity: f32,
}

/// The vectors of kept answers, per scope; at most `capacity` in all (the oldest go first).
/// Their length is the first one's. A scope of `approximate_above` vectors or more is searched
/// approximately: the cosine is computed only for the [`SHORTLIST`] rows whose sign sketches
/// are nearest the query's (random-hyperplane hashing), not for every row.
#[derive(Debug)]
pub struct Index {
    dimensions: std::sync::OnceLock<usize>,
    planes: std::sync::OnceLock<Vec<f32>>,
    approximate_above: usize,
    capacity: usize,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    scopes: HashMap<Key, Rows>,
    /// Insertion order, for eviction.
    order: VecDeque<(Key, Key)>,
}

impl Index {
    /// An empty index holding at most `capacity` vectors, searching scopes of
    /// `approximate_above` or more approximately.
    pub fn new(capacity: usize, approximate_above: usize) -> Index {
        Index {
            dimensions: std::sync::OnceLock::new(),
            planes: std::sync::OnceLock::new(),
            approximate_above,
            capacity: capacity.max(1),
            inner: RwLock::new(Inner::default()),
        }
    }

    /// Vectors held.
    pub fn len(&self) -> usize {
        self.read().order.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `vector` for `item` in `scope` (replacing the item's earlier vector), evicting the
    /// oldest past the capacity.
    pub fn insert(&self, scope: Key, vector: &[f32], item: Item) {
        let dimensions = *self.dimensions.get_or_init(|| vector.len());
        if vector.len() != dimensions || dimensions == 0 {
            return;
        }
        let sign = sketch(self.planes.get_or_init(|| planes(dimensions)), vector);
        let mut inner = self.write();
        let Inner { scopes, order } = &mut *inner;
        let rows = scopes.entry(scope).or_default();
        if let Some(position) = rows.items.iter().position(|own| own.key == item.key) {
            rows.items[position] = item;
            rows.signs[position] = sign;
            let start = position * dimensions;
            rows.vectors[start..start + dimensions].copy_from_slice(vector);
            return;
        }
        order.push_back((scope, item.key));
        rows.vectors.extend_from_slice(vector);
        rows.items.push(item);
        rows.signs.push(sign);
        while order.len() > self.capacity {
            let Some((scope, key)) = order.pop_front() else {
                break;
            };
            remove(scopes, dimensions, &scope, &key);
        }
    }

    /// Drops `key` from `scope` (its answer is gone from the exact cache).
    pub fn remove(&self, scope: &Key, key: &Key) {
        let Some(&dimensions) = self.dimensions.get() else {
            return;
        };
        let mut inner = self.write();
        let Inner { scopes, order } = &mut *inner;
        if remove(scopes, dimensions, scope, key) {
            order.retain(|(own_scope, own_key)| own_scope != scope || own_key != key);
        }
    }

    /// The `count` most similar items in `scope` at `threshold` or above, most similar first.
    pub fn search(
        &self,
        scope: &Key,
        query: &[f32],
        threshold: f32,
        count: usize,
    ) -> Vec<Candidate> {
        let Some(&dimensions) = self.dimensions.get() else {
            return Vec::new();
        };
        if query.len() != dimensions {
            return Vec::new();
        }
        let inner = self.read();
        let Some(rows) = inner.scopes.get(scope) else {
            return Vec::new();
        };
        let mut found: Vec<Candidate> = Vec::new();
        let shortlist: Vec<usize> = match self.planes.get() {
            Some(planes) if rows.items.len() >= self.approximate_above.max(SHORTLIST) => {
                let sign = sketch(planes, query);
                let mut near: Vec<(u32, usize)> = rows
                    .signs
                    .iter()
                    .enumerate()
                    .map(|(row, own)| ((own ^ sign).count_ones(), row))
                    .collect();
                near.select_nth_unstable(SHORTLIST - 1);
                near.truncate(SHORTLIST);
                near.into_iter().map(|(_, row)| row).collect()
            }
            _ => (0..rows.items.len()).collect(),
        };
        for position in shortlist {
            let (row, item) = (
                &rows.vectors[position * dimensions..(position + 1) * dimensions],
                &rows.items[position],
            );
            let similarity = dot(row, query);
            if similarity < threshold {
                continue;
            }
            found.push(Candidate {
                item: item.clone(),
                similarity,
            });
            if found.len() > count {
                found.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
                found.truncate(count);
            }
        }
        found.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        found.truncate(count);
        found
    }
}

/// Removes `key`'s row from `scope`; whether it was there.
fn remove(scopes: &mut HashMap<Key, Rows>, dimensions: usize, scope: &Key, key: &Key) -> bool {
    let Some(rows) = scopes.get_mut(scope) else {
        return false;
    };
    let Some(position) = rows.items.iter().position(|item| item.key == *key) else {
        return false;
    };
    let last = rows.items.len() - 1;
    if position != last {
        let (head, tail) = rows.vectors.split_at_mut(last * dimensions);
        head[position * dimensions..(position + 1) * dimensions]
            .copy_from_slice(&tail[..dimensions]);
    }
    rows.vectors.truncate(last * dimensions);
    rows.items.swap_remove(position);
    rows.signs.swap_remove(position);
    if rows.items.is_empty() {
        scopes.remove(scope);
    }
    true
}

#[cfg(test)]
mod tests;
