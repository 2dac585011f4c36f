//! One Ed25519 signing key as jsonwebtoken uses it ([`KeyPair`]), new keys, and the key file of
//! nodes from before key sets lived in the store.

use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

use super::{AuthError, Claims};

/// An Ed25519 key pair: its kid, its raw public key, and the halves that sign and verify.
#[derive(Clone)]
pub(crate) struct KeyPair {
    /// First 16 hex digits of the SHA-256 of the raw public key.
    pub(crate) kid: String,
    /// The raw 32-byte public key.
    pub(crate) public_key: Vec<u8>,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Reads a PKCS#8 DER Ed25519 private key; `None` when it is not one.
    pub(crate) fn from_pkcs8(pkcs8: &[u8]) -> Option<KeyPair> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).ok()?;
        let public_key = pair.public_key().as_ref().to_vec();
        let decoding =
            DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&public_key)).ok()?;
        Some(KeyPair {
            kid: kid_of(&public_key),
            public_key,
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding,
        })
    }

    /// Signs claims into a JWT whose header names this key.
    ///
    /// # Panics
    /// Panics only if signing with the validated key fails, which the crypto library never does.
    pub(crate) fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .expect("signing claims with a validated Ed25519 key cannot fail")
    }

    /// Returns the public key as a JSON Web Key.
    pub(crate) fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public_key),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

/// Returns the kid of a raw public key: the first 16 hex digits of its SHA-256.
pub(crate) fn kid_of(public_key: &[u8]) -> String {
    digest(&SHA256, public_key).as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Tells whether `kid` has the shape of ours (16 lowercase hex digits): only such a kid is worth
/// reloading the key set for.
pub(crate) fn is_kid_shaped(kid: &str) -> bool {
    kid.len() == 16 && kid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Generates a new Ed25519 private key, PKCS#8 DER.
pub(crate) fn generate_pkcs8() -> Result<Vec<u8>, AuthError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map(|doc| doc.as_ref().to_vec())
        .map_err(|_| AuthError::KeyGeneration)
}

/// Reads the key file of a node from before key sets (`None` when there is none); fails when it
/// cannot be read or holds no Ed25519 PKCS#8 key.
pub(crate) fn read_key_file(path: &Path) -> Result<Option<(Vec<u8>, KeyPair)>, AuthError> {
    match std::fs::read(path) {
        Ok(pkcs8) => match KeyPair::from_pkcs8(&pkcs8) {
            Some(pair) => Ok(Some((pkcs8, pair))),
            None => Err(AuthError::KeyFormat {
                path: path.to_path_buf(),
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthError::KeyIo {
            path: path.to_path_buf(),
            source,
        }),
    }
}
