//! Bearer tokens: making them, hashing them, and finding the one a request
//! presents.
//!
//! The config file holds only SHA-256 hashes of tokens (a token is 32
//! random bytes, so a plain hash is as strong as a slow one), each with a
//! name and a role. A presented token is hashed and compared against every
//! configured hash in constant time, without stopping at a match, so the
//! answer's timing says nothing about which hash or how many bytes matched.
//! This module never logs or stores a token itself.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::auth::{Caller, Role};

/// Every token starts with this, so leaked ones are easy to grep for.
pub const TOKEN_PREFIX: &str = "alog_";
/// How a hash is written in the config file: `sha256:<64 hex digits>`.
const HASH_PREFIX: &str = "sha256:";

/// One `[[tokens]]` entry of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub role: Role,
    /// `sha256:<64 hex digits>`, as printed by `auditlog token`.
    pub hash: String,
}

#[derive(Debug, Clone)]
struct Known {
    name: String,
    role: Role,
    digest: [u8; 32],
}

/// The configured tokens. Empty means the server is open (loopback only).
#[derive(Debug, Clone, Default)]
pub struct TokenSet {
    known: Vec<Known>,
}

impl TokenSet {
    /// Checks the entries (well-formed hashes, unique non-empty names,
    /// no hash twice) and builds the set.
    pub fn from_entries(entries: &[TokenEntry]) -> Result<TokenSet, String> {
        let mut known: Vec<Known> = Vec::with_capacity(entries.len());
        for e in entries {
            let name = e.name.trim();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                return Err(format!(
                    "token name {:?} must be 1 to 100 printable characters",
                    e.name
                ));
            }
            let digest = parse_hash(&e.hash)
                .ok_or_else(|| format!("token {name:?}: hash must be `sha256:` and 64 hex digits, as printed by `auditlog token`"))?;
            if known.iter().any(|k| k.name == name) {
                return Err(format!("token name {name:?} appears twice"));
            }
            if known.iter().any(|k| k.digest == digest) {
                return Err(format!("token {name:?} has the same hash as another token"));
            }
            known.push(Known {
                name: name.to_owned(),
                role: e.role,
                digest,
            });
        }
        Ok(TokenSet { known })
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// The caller a presented token stands for, if it is a configured one.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let digest = sha256(presented.as_bytes());
        let mut found: Option<&Known> = None;
        for k in &self.known {
            // Every hash is compared; no early exit on a match.
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(k);
            }
        }
        found.map(|k| Caller {
            name: k.name.clone(),
            role: k.role,
        })
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = Sha256::digest(bytes);
    let mut out = [0u8; 32];
    for (o, b) in out.iter_mut().zip(d.iter()) {
        *o = *b;
    }
    out
}

fn parse_hash(s: &str) -> Option<[u8; 32]> {
    let hex_digits = s.trim().strip_prefix(HASH_PREFIX)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut out).ok()?;
    Some(out)
}

/// The config-file form of a token's hash.
pub fn hash_token(token: &str) -> String {
    format!("{HASH_PREFIX}{}", hex::encode(sha256(token.as_bytes())))
}

/// A new token: the prefix and 32 bytes from the OS's random source.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, role: Role, token: &str) -> TokenEntry {
        TokenEntry {
            name: name.into(),
            role,
            hash: hash_token(token),
        }
    }

    #[test]
    fn finds_the_right_caller_and_nothing_else() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64);
        let set = TokenSet::from_entries(&[
            entry("ingester", Role::Ingest, &a),
            entry("reader", Role::Read, &b),
        ])
        .unwrap();
        assert_eq!(
            set.authenticate(&a),
            Some(Caller {
                name: "ingester".into(),
                role: Role::Ingest
            })
        );
        assert_eq!(set.authenticate(&b).map(|c| c.role), Some(Role::Read));
        assert_eq!(set.authenticate(""), None);
        assert_eq!(set.authenticate(&a[..a.len() - 1]), None);
        // The hash itself is not a token.
        assert_eq!(set.authenticate(&hash_token(&a)), None);
    }

    #[test]
    fn rejects_bad_entries() {
        let t = generate_token().unwrap();
        let bad_hash = TokenEntry {
            name: "x".into(),
            role: Role::Read,
            hash: "sha256:abc".into(),
        };
        assert!(TokenSet::from_entries(&[bad_hash]).is_err());
        let plain = TokenEntry {
            name: "x".into(),
            role: Role::Read,
            hash: t.clone(),
        };
        assert!(TokenSet::from_entries(&[plain]).is_err());
        assert!(TokenSet::from_entries(&[
            entry("x", Role::Read, &t),
            entry("x", Role::Admin, "other")
        ])
        .is_err());
        assert!(
            TokenSet::from_entries(&[entry("x", Role::Read, &t), entry("y", Role::Admin, &t)])
                .is_err()
        );
        assert!(TokenSet::from_entries(&[entry(" ", Role::Read, &t)]).is_err());
    }
}
