//! Forged access tokens for the authentication tests: each keeps the claims of a real token so that
//! only the property under test (algorithm, key) is wrong.

use anyhow::{Context, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Returns the decoded header and claims of a JWT (no verification).
pub fn decode_unverified(token: &str) -> Result<(Value, Value)> {
    let mut parts = token.split('.');
    let header = parts.next().context("token has no header")?;
    let claims = parts.next().context("token has no claims")?;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header.trim_end_matches('='))?)?;
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims.trim_end_matches('='))?)?;
    Ok((header, claims))
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// Returns `real` re-issued with `alg: none` and an empty signature.
pub fn alg_none(real: &str) -> Result<String> {
    let (mut header, claims) = decode_unverified(real)?;
    header["alg"] = json!("none");
    Ok(format!("{}.{}.", b64_json(&header), b64_json(&claims)))
}

/// Returns `real` re-signed (EdDSA, same `kid` and claims) by a freshly generated Ed25519 key that the
/// server has never seen.
pub fn foreign_key(real: &str) -> Result<String> {
    let (header, claims) = decode_unverified(real)?;
    sign_with_new_key(&header, &claims)
}

/// Returns `real` re-signed (EdDSA, same claims) by a freshly generated Ed25519 key under `kid`: a
/// kid of the server's shape that no key of its set has.
pub fn foreign_kid(real: &str, kid: &str) -> Result<String> {
    let (mut header, claims) = decode_unverified(real)?;
    header["kid"] = json!(kid);
    sign_with_new_key(&header, &claims)
}

/// Returns the `kid` header of a JWT (no verification).
pub fn kid(token: &str) -> Result<String> {
    let (header, _) = decode_unverified(token)?;
    header["kid"]
        .as_str()
        .map(str::to_owned)
        .context("token has no kid")
}

fn sign_with_new_key(header: &Value, claims: &Value) -> Result<String> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|e| anyhow::anyhow!("ed25519 keygen: {e:?}"))?;
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .map_err(|e| anyhow::anyhow!("ed25519 key: {e:?}"))?;
    let _ = key.public_key();
    let signing_input = format!("{}.{}", b64_json(header), b64_json(claims));
    let sig = key.sign(signing_input.as_bytes());
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(sig.as_ref())
    ))
}

/// Returns `real` with one character in the middle of its signature changed (not the last one, whose
/// low bits are padding).
pub fn tampered_signature(real: &str) -> String {
    let mut chars: Vec<char> = real.chars().collect();
    let sig_start = real.rfind('.').map_or(0, |i| i + 1);
    let i = sig_start + (chars.len() - sig_start) / 2;
    if let Some(c) = chars.get_mut(i) {
        *c = if *c == 'A' { 'B' } else { 'A' };
    }
    chars.into_iter().collect()
}
