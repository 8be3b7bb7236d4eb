//! The Ed25519 signing key: created on first start, kept in its own file
//! apart from the data directory (so a copy of the data holds no key), and
//! the public half in the forms people verify with (hex, PEM).
//!
//! Key file (56 bytes, mode 0600):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `AUDLKEY\0` |
//! | 8 | 2 | version (1) |
//! | 10 | 2 | algorithm: 1 = Ed25519 |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 32 | the Ed25519 secret seed |
//! | 48 | 2 | version again (footer) |
//! | 50 | 2 | reserved, 0 |
//! | 52 | 4 | crc32 of bytes 0..52 |
//!
//! This module never logs or returns the secret.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::io::FileSystem;
use crate::segment::format::u32_at;

const KEY_MAGIC: [u8; 8] = *b"AUDLKEY\0";
const KEY_VERSION: u16 = 1;
const ALGO_ED25519: u16 = 1;
const KEY_FILE_LEN: usize = 56;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): what
/// `openssl pkey -pubin` reads, followed by the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

pub type PublicKey = [u8; 32];
pub type Signature = [u8; 64];

/// The store's signing key.
pub struct Signer {
    key: SigningKey,
    pub path: PathBuf,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("path", &self.path)
            .field("public", &crate::integrity::chain::hex(&self.public_key()))
            .finish()
    }
}

impl Signer {
    /// Loads the key at `path`, or creates one there if no file exists.
    /// A file that exists but does not hold a valid key is an error, never
    /// replaced: a new key would orphan every earlier signature.
    pub fn load_or_create(fs: &dyn FileSystem, path: &Path) -> Result<Signer> {
        match fs.read_all(path) {
            Ok(bytes) => {
                let seed = decode_key_file((*bytes).as_ref()).ok_or_else(|| {
                    Error::corrupt(path, 0, "signing key file is damaged or not a key")
                })?;
                Ok(Signer {
                    key: SigningKey::from_bytes(&seed),
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| {
                    Error::Internal(format!("no randomness for a signing key: {e}"))
                })?;
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs.create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                }
                fs.write_atomic_private(path, &encode_key_file(&seed))
                    .map_err(|e| Error::io(path, e))?;
                tracing::info!(key = %path.display(), "created a new signing key");
                Ok(Signer {
                    key: SigningKey::from_bytes(&seed),
                    path: path.to_path_buf(),
                })
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message).to_bytes()
    }
}

fn encode_key_file(seed: &[u8; 32]) -> Vec<u8> {
    let mut b = Vec::with_capacity(KEY_FILE_LEN);
    b.extend_from_slice(&KEY_MAGIC);
    b.extend_from_slice(&KEY_VERSION.to_le_bytes());
    b.extend_from_slice(&ALGO_ED25519.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(seed);
    b.extend_from_slice(&KEY_VERSION.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn decode_key_file(b: &[u8]) -> Option<[u8; 32]> {
    if b.len() != KEY_FILE_LEN || b.get(..8)? != KEY_MAGIC {
        return None;
    }
    let version = KEY_VERSION.to_le_bytes();
    let algo = ALGO_ED25519.to_le_bytes();
    if b.get(8..10)? != version || b.get(10..12)? != algo || b.get(48..50)? != version {
        return None;
    }
    if u32_at(b, 52)? != crc32fast::hash(b.get(..52)?) {
        return None;
    }
    b.get(16..48)?.try_into().ok()
}

/// True when `signature` is a valid Ed25519 signature of `message` by
/// `public` (strict verification: no malleable encodings).
pub fn verify_signature(public: &PublicKey, message: &[u8], signature: &Signature) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &sig).is_ok()
}

/// The public key as PEM (SubjectPublicKeyInfo), for `openssl`.
pub fn public_key_pem(public: &PublicKey) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// Reads a public key given as 64 hex digits, PEM, raw 32 bytes, or DER.
pub fn parse_public_key(input: &[u8]) -> Option<PublicKey> {
    if let Ok(text) = std::str::from_utf8(input) {
        let text = text.trim();
        if let Some(key) = crate::integrity::chain::digest_from_hex(text) {
            return Some(key);
        }
        if text.starts_with("-----BEGIN PUBLIC KEY-----") {
            let body: String = text
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .concat();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .ok()?;
            return from_der(&der);
        }
    }
    match input.len() {
        32 => input.try_into().ok(),
        _ => from_der(input),
    }
}

fn from_der(der: &[u8]) -> Option<PublicKey> {
    if der.len() != SPKI_PREFIX.len() + 32 || der.get(..SPKI_PREFIX.len())? != SPKI_PREFIX {
        return None;
    }
    der.get(SPKI_PREFIX.len()..)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SimFs;

    #[test]
    fn created_once_then_loaded_and_signatures_verify() {
        let fs = SimFs::new();
        let path = Path::new("/keys/store.key");
        let a = Signer::load_or_create(&fs, path).unwrap();
        let b = Signer::load_or_create(&fs, path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let sig = a.sign(b"hello");
        assert!(verify_signature(&a.public_key(), b"hello", &sig));
        assert!(!verify_signature(&a.public_key(), b"hellO", &sig));
        let pem = public_key_pem(&a.public_key());
        assert_eq!(parse_public_key(pem.as_bytes()), Some(a.public_key()));
        let hex = crate::integrity::chain::hex(&a.public_key());
        assert_eq!(parse_public_key(hex.as_bytes()), Some(a.public_key()));
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_replaced() {
        let fs = SimFs::new();
        let path = Path::new("/k.key");
        Signer::load_or_create(&fs, path).unwrap();
        let mut bytes = fs.file(path).unwrap();
        bytes[20] ^= 1;
        fs.put_file(path, bytes.clone());
        assert!(Signer::load_or_create(&fs, path).is_err());
        assert_eq!(fs.file(path).unwrap(), bytes);
    }
}
