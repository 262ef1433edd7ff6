use std::collections::HashMap;

use super::*;

fn hex(hash: &Hash) -> String {
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Hash {
    let mut hash = [0; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    hash
}

/// The leaves of Certificate Transparency's reference tree.
fn reference_leaves() -> Vec<Hash> {
    let data: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    data.iter().map(|leaf| leaf_hash(leaf)).collect()
}

const REFERENCE_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// A tree kept as the stored nodes the frontier completes, as the store keeps it.
struct Stored {
    nodes: HashMap<Node, Hash>,
    frontier: Frontier,
}

impl Stored {
    fn of(leaves: &[Hash]) -> Stored {
        let mut stored = Stored {
            nodes: HashMap::new(),
            frontier: Frontier::empty(),
        };
        for leaf in leaves {
            for (node, hash) in stored.frontier.push(*leaf) {
                assert!(stored.nodes.insert(node, hash).is_none(), "{node:?} twice");
            }
        }
        stored
    }

    fn range(&self, (start, end): (u64, u64)) -> Hash {
        let hashes: Vec<Hash> = subtrees(start, end)
            .iter()
            .map(|node| self.nodes[node])
            .collect();
        fold(&hashes)
    }

    fn inclusion(&self, index: u64, size: u64) -> Vec<Hash> {
        let ranges = inclusion_ranges(index, size).expect("in range");
        ranges.into_iter().map(|range| self.range(range)).collect()
    }

    fn consistency(&self, first: u64, second: u64) -> Vec<Hash> {
        let ranges = consistency_ranges(first, second).expect("in range");
        ranges.into_iter().map(|range| self.range(range)).collect()
    }
}

#[test]
fn roots_match_the_rfc_6962_reference_tree() {
    let leaves = reference_leaves();
    let stored = Stored::of(&leaves);
    for size in 0..=8 {
        assert_eq!(
            hex(&root(&leaves[..size])),
            REFERENCE_ROOTS[size],
            "size {size}"
        );
        assert_eq!(hex(&stored.range((0, size as u64))), REFERENCE_ROOTS[size]);
    }
    assert_eq!(hex(&stored.frontier.root()), REFERENCE_ROOTS[8]);
}

#[test]
fn proofs_match_the_reference_tree_s_published_ones() {
    let stored = Stored::of(&reference_leaves());
    let proof: Vec<String> = stored.inclusion(0, 8).iter().map(hex).collect();
    assert_eq!(
        proof,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ]
    );
    let proof: Vec<String> = stored.inclusion(5, 8).iter().map(hex).collect();
    assert_eq!(
        proof,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ]
    );
    let proof: Vec<String> = stored.consistency(2, 5).iter().map(hex).collect();
    assert_eq!(
        proof,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ]
    );
    verify_consistency(
        2,
        5,
        &[
            unhex("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            unhex("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
        &unhex(REFERENCE_ROOTS[2]),
        &unhex(REFERENCE_ROOTS[5]),
    )
    .expect("the published proof holds");
}

#[test]
fn every_proof_of_every_tree_up_to_70_leaves_holds_and_no_altered_one_does() {
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let stored = Stored::of(&leaves);
    for size in 1..=70u64 {
        let tree_root = root(&leaves[..size as usize]);
        assert_eq!(stored.range((0, size)), tree_root, "size {size}");
        for index in 0..size {
            let proof = stored.inclusion(index, size);
            let leaf = &leaves[index as usize];
            verify_inclusion(index, size, leaf, &proof, &tree_root)
                .unwrap_or_else(|error| panic!("leaf {index} of {size}: {error}"));
            // Another leaf, another place, a shorter proof, a changed hash: all refused.
            let other = &leaves[((index + 1) % size) as usize];
            if size > 1 {
                assert!(verify_inclusion(index, size, other, &proof, &tree_root).is_err());
                assert!(
                    verify_inclusion((index + 1) % size, size, leaf, &proof, &tree_root).is_err()
                );
                assert!(verify_inclusion(index, size, leaf, &proof[1..], &tree_root).is_err());
                let mut bent = proof.clone();
                bent[0][7] ^= 1;
                assert!(verify_inclusion(index, size, leaf, &bent, &tree_root).is_err());
            }
        }
        for first in 1..=size {
            let first_root = root(&leaves[..first as usize]);
            let proof = stored.consistency(first, size);
            verify_consistency(first, size, &proof, &first_root, &tree_root)
                .unwrap_or_else(|error| panic!("{first} to {size}: {error}"));
            if first < size {
                let wrong = root(&leaves[1..=first as usize]);
                assert!(verify_consistency(first, size, &proof, &wrong, &tree_root).is_err());
                let mut bent = proof.clone();
                if let Some(last) = bent.last_mut() {
                    last[0] ^= 0x80;
                }
                assert!(
                    verify_consistency(first, size, &bent, &first_root, &tree_root).is_err(),
                    "{first} to {size}"
                );
            }
        }
    }
}

#[test]
fn a_frontier_rebuilt_from_stored_nodes_goes_on_as_the_whole_tree() {
    let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let stored = Stored::of(&leaves[..23]);
    let hashes = subtrees(0, 23)
        .iter()
        .map(|node| stored.nodes[node])
        .collect();
    let mut frontier = Frontier::new(23, hashes).expect("23 has four bits set");
    for leaf in &leaves[23..] {
        frontier.push(*leaf);
    }
    assert_eq!(frontier.root(), root(&leaves));
    assert!(Frontier::new(23, vec![[0; 32]; 3]).is_none());
}

#[test]
fn leaves_and_nodes_are_domain_separated() {
    let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
    let mut joined = Vec::from(a);
    joined.extend_from_slice(&b);
    // A leaf whose data is two hashes is not the node over them.
    assert_ne!(leaf_hash(&joined), node_hash(&a, &b));
}
