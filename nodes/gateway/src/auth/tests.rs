use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::json;
use uuid::Uuid;

use super::*;

const HOUR_MS: i64 = 3_600_000;

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("ms fit in i64")
}

fn b64(json: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

/// Claims of a valid access token for user 7, as JSON so tests can bend them.
fn access_claims() -> serde_json::Value {
    let now = now_ms() / 1000;
    json!({
        "sub": "7", "name": "alice", "typ": "access", "jti": Uuid::now_v7().to_string(),
        "iat": now, "exp": now + 600, "iss": "banter", "aud": "banter",
    })
}

/// Signs `claims` with `signer`'s private key under the header `kid` given.
fn sign_as(signer: &AuthKeys, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &signer.signing_pair().encoding).expect("encode")
}

#[test]
fn issued_tokens_round_trip() {
    let keys = AuthKeys::generate();
    let now = now_ms();
    let t = keys.issue(42, "alice", now, 900, 86_400);
    assert_eq!(t.expires_in, 900);
    assert_eq!(t.refresh_expires_at_ms, (now / 1000 + 86_400) * 1000);

    let access = keys
        .verify_loaded(&t.access_token, TokenType::Access)
        .expect("access verifies");
    assert_eq!(access.user_id().expect("numeric sub"), UserId(42));
    assert_eq!(
        (access.name.as_str(), access.typ),
        ("alice", TokenType::Access)
    );
    assert_eq!(
        (access.iss.as_str(), access.aud.as_str()),
        ("banter", "banter")
    );
    assert_eq!(access.exp - access.iat, 900);

    let refresh = keys
        .verify_loaded(&t.refresh_token, TokenType::Refresh)
        .expect("refresh verifies");
    assert_eq!(refresh.jti, t.refresh_jti);
    assert_ne!(refresh.jti, access.jti);
    assert!(Uuid::parse_str(&refresh.jti).is_ok());

    let header = jsonwebtoken::decode_header(&t.access_token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid, Some(keys.kid()));
    assert_eq!(keys.kid().len(), 16);
}

#[test]
fn expired_token_is_refused() {
    let keys = AuthKeys::generate();
    let t = keys.issue(1, "alice", now_ms() - HOUR_MS, 60, 60);
    let err = keys
        .verify_loaded(&t.access_token, TokenType::Access)
        .expect_err("expired");
    assert!(matches!(err, AuthError::Expired), "{err:?}");
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        ("token_expired", "token expired")
    );
    let err = keys
        .verify_loaded(&t.refresh_token, TokenType::Refresh)
        .expect_err("expired");
    assert!(matches!(err, AuthError::Expired), "{err:?}");
}

#[test]
fn token_of_another_key_with_our_kid_is_refused() {
    let keys = AuthKeys::generate();
    let other = AuthKeys::generate();
    let forged = sign_as(&other, Some(keys.kid().as_str()), &access_claims());
    let err = keys
        .verify_loaded(&forged, TokenType::Access)
        .expect_err("forged");
    assert!(matches!(err, AuthError::BadSignature), "{err:?}");
    // The other node's own tokens are refused by their kid already.
    let foreign = other.issue(1, "alice", now_ms(), 60, 60).access_token;
    assert!(matches!(
        keys.verify_loaded(&foreign, TokenType::Access),
        Err(AuthError::BadSignature)
    ));
}

#[test]
fn missing_or_unknown_kid_is_refused() {
    let keys = AuthKeys::generate();
    let no_kid = sign_as(&keys, None, &access_claims());
    assert!(matches!(
        keys.verify_loaded(&no_kid, TokenType::Access),
        Err(AuthError::BadSignature)
    ));
    let wrong_kid = sign_as(&keys, Some("0000000000000000"), &access_claims());
    assert!(matches!(
        keys.verify_loaded(&wrong_kid, TokenType::Access),
        Err(AuthError::BadSignature)
    ));
}

#[test]
fn tampered_claims_are_refused() {
    let keys = AuthKeys::generate();
    let token = keys.issue(7, "alice", now_ms(), 60, 60).access_token;
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut claims = access_claims();
    claims["sub"] = json!("1");
    let evil = b64(&claims);
    parts[1] = &evil;
    let err = keys
        .verify_loaded(&parts.join("."), TokenType::Access)
        .expect_err("tampered");
    assert!(matches!(err, AuthError::BadSignature), "{err:?}");
}

#[test]
fn alg_none_is_refused() {
    let keys = AuthKeys::generate();
    let claims = b64(&access_claims());
    for alg in ["none", "None", "NONE"] {
        let header = b64(&json!({"alg": alg, "typ": "JWT", "kid": keys.kid()}));
        for sig in ["", "AAAA"] {
            let token = format!("{header}.{claims}.{sig}");
            let err = keys
                .verify_loaded(&token, TokenType::Access)
                .expect_err("alg none");
            assert!(
                matches!(err, AuthError::BadSignature),
                "{alg} {sig:?}: {err:?}"
            );
        }
    }
}

#[test]
fn hmac_keyed_with_the_public_key_is_refused() {
    let keys = AuthKeys::generate();
    let claims = access_claims();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(keys.kid());
    let pair = keys.signing_pair();
    let secrets = [
        pair.public_key.clone(),
        URL_SAFE_NO_PAD.encode(&pair.public_key).into_bytes(),
    ];
    for secret in secrets {
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret))
            .expect("encode hs256");
        let err = keys
            .verify_loaded(&token, TokenType::Access)
            .expect_err("hs256");
        assert!(matches!(err, AuthError::BadSignature), "{err:?}");
        // The library's own check refuses it too, should the header check ever go.
        let direct = jsonwebtoken::decode::<Claims>(&token, &pair.decoding, keys.validation());
        assert!(direct.is_err());
    }
}

#[test]
fn other_algorithms_are_refused() {
    let keys = AuthKeys::generate();
    let claims = b64(&access_claims());
    for alg in ["RS256", "ES256", "PS256", "HS512", "EdDSA2"] {
        let header = b64(&json!({"alg": alg, "kid": keys.kid()}));
        let token = format!("{header}.{claims}.AAAA");
        let err = keys
            .verify_loaded(&token, TokenType::Access)
            .expect_err(alg);
        assert!(matches!(err, AuthError::BadSignature), "{alg}: {err:?}");
    }
}

#[test]
fn token_types_are_not_interchangeable() {
    let keys = AuthKeys::generate();
    let t = keys.issue(1, "alice", now_ms(), 60, 60);
    let err = keys
        .verify_loaded(&t.refresh_token, TokenType::Access)
        .expect_err("refresh as access");
    assert!(matches!(err, AuthError::WrongType), "{err:?}");
    assert_eq!(err.code(), "invalid_token");
    let err = keys
        .verify_loaded(&t.access_token, TokenType::Refresh)
        .expect_err("access as refresh");
    assert!(matches!(err, AuthError::WrongType), "{err:?}");
}

#[test]
fn wrong_issuer_audience_or_claims_are_refused() {
    let keys = AuthKeys::generate();
    let cases = [
        ("iss", json!("evil"), "invalid token (wrong issuer)"),
        ("aud", json!("other"), "invalid token (wrong audience)"),
        ("sub", json!("not-a-number"), "invalid token (bad subject)"),
        ("typ", json!("admin"), "invalid token (unreadable claims)"),
    ];
    for (claim, value, message) in cases {
        let mut claims = access_claims();
        claims[claim] = value;
        let token = sign_as(&keys, Some(keys.kid().as_str()), &claims);
        let err = keys
            .verify_loaded(&token, TokenType::Access)
            .expect_err(claim);
        assert!(matches!(err, AuthError::Invalid(_)), "{claim}: {err:?}");
        assert_eq!(err.to_string(), message);
        assert_eq!(err.code(), "invalid_token");
    }
    for claim in ["exp", "iss", "aud", "sub"] {
        let mut claims = access_claims();
        claims.as_object_mut().expect("object").remove(claim);
        let token = sign_as(&keys, Some(keys.kid().as_str()), &claims);
        let err = keys
            .verify_loaded(&token, TokenType::Access)
            .expect_err(claim);
        assert!(matches!(err, AuthError::Invalid(_)), "{claim}: {err:?}");
    }
}

#[test]
fn garbage_is_malformed() {
    let keys = AuthKeys::generate();
    for garbage in [
        "garbage",
        "a.b.c",
        "a.b",
        "...",
        "eyJ.eyJ.sig",
        "a.b.c.d",
        "Bearer x",
    ] {
        let err = keys
            .verify_loaded(garbage, TokenType::Access)
            .expect_err(garbage);
        assert!(matches!(err, AuthError::Malformed), "{garbage}: {err:?}");
        assert_eq!(err.to_string(), "invalid token: malformed");
    }
    let huge = format!("{}.{}.{}", "a".repeat(5000), "b".repeat(5000), "c");
    assert!(matches!(
        keys.verify_loaded(&huge, TokenType::Access),
        Err(AuthError::Malformed)
    ));
    // A valid header and claims with a signature that is not base64.
    let token = keys.issue(1, "alice", now_ms(), 60, 60).access_token;
    let (signed, _) = token.rsplit_once('.').expect("three parts");
    let err = keys
        .verify_loaded(&format!("{signed}.***"), TokenType::Access)
        .expect_err("bad sig");
    assert!(
        matches!(err, AuthError::Malformed | AuthError::BadSignature),
        "{err:?}"
    );
    for empty in ["", "   "] {
        let err = keys
            .verify_loaded(empty, TokenType::Access)
            .expect_err("empty");
        assert!(matches!(err, AuthError::Missing), "{err:?}");
        assert_eq!(err.code(), "missing_token");
    }
}

#[test]
fn jwks_lets_an_external_verifier_check_tokens() {
    let keys = AuthKeys::generate();
    let jwks = keys.jwks();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], keys.kid());
    let x = URL_SAFE_NO_PAD
        .decode(key["x"].as_str().expect("x"))
        .expect("base64url x");
    assert_eq!(x.len(), 32);

    let set: JwkSet = serde_json::from_value(jwks).expect("a JWK set");
    let jwk = set.find(&keys.kid()).expect("our kid");
    let decoding = DecodingKey::from_jwk(jwk).expect("decoding key from jwk");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["banter"]);
    let token = keys.issue(9, "bob", now_ms(), 60, 60).access_token;
    let data = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation).expect("verifies");
    assert_eq!(data.claims.sub, "9");
    // And the same external verifier refuses another key's token.
    let other = AuthKeys::generate()
        .issue(9, "bob", now_ms(), 60, 60)
        .access_token;
    assert!(jsonwebtoken::decode::<Claims>(&other, &decoding, &validation).is_err());
}

#[test]
fn debug_does_not_print_the_private_key() {
    let keys = AuthKeys::generate();
    let shown = format!("{keys:?}");
    assert!(
        shown.contains(&keys.kid()) && !shown.contains("encoding"),
        "{shown}"
    );
}

#[test]
fn bearer_header_parsing() {
    assert_eq!(bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
    assert_eq!(bearer("bearer abc"), Some("abc"));
    assert_eq!(bearer("BEARER   abc  "), Some("abc"));
    assert_eq!(bearer("Basic abc"), None);
    assert_eq!(bearer("Bearer"), None);
    assert_eq!(bearer("Bearer "), None);
    assert_eq!(bearer("Bearer a b"), None);
    assert_eq!(bearer("Bearerabc"), None);
    assert_eq!(bearer(""), None);
}

#[test]
fn refresh_and_access_tokens_share_their_chain() {
    let keys = AuthKeys::generate();
    let t = keys.issue(5, "erin", now_ms(), 60, 60);
    let access = keys
        .verify_loaded(&t.access_token, TokenType::Access)
        .expect("access");
    let refresh = keys
        .verify_loaded(&t.refresh_token, TokenType::Refresh)
        .expect("refresh");
    assert_eq!(access.sid.as_deref(), Some(t.chain.as_str()));
    assert_eq!(refresh.chain(), t.chain);
    let next = keys.issue_in_chain(5, "erin", &t.chain, now_ms(), 60, 60);
    assert_eq!(next.chain, t.chain);
    let next_claims = keys
        .verify_loaded(&next.refresh_token, TokenType::Refresh)
        .expect("refresh");
    assert_eq!(next_claims.chain(), t.chain);
    assert_ne!(next_claims.jti, refresh.jti);
    assert_ne!(
        keys.issue(5, "erin", now_ms(), 60, 60).chain,
        t.chain,
        "a login starts a chain"
    );
    // A token from before chains is its own chain.
    let mut legacy = refresh.clone();
    legacy.sid = None;
    assert_eq!(legacy.chain(), legacy.jti);
}
