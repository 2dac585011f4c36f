//! Domain validation rules for what users type: usernames, passwords, display names, room names and
//! message bodies (see "Rules" in `docs/PROTOCOL.md`).
//!
//! Every function is pure. The ones that return a `String` return the normalized form to store
//! (lowercase username, trimmed names); the error says which rule failed, in a sentence fit to show
//! to the user, and [`RuleError::code`] gives the stable machine-readable code of the field.

use thiserror::Error;

/// Fewest characters in a username.
pub const USERNAME_MIN_CHARS: usize = 3;
/// Most characters in a username.
pub const USERNAME_MAX_CHARS: usize = 32;
/// Fewest characters in a password.
pub const PASSWORD_MIN_CHARS: usize = 8;
/// Most characters in a password; bounds the work one login attempt can cause.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Most characters in a display name.
pub const DISPLAY_NAME_MAX_CHARS: usize = 64;
/// Most characters in a room name.
pub const ROOM_NAME_MAX_CHARS: usize = 100;
/// Most bytes `limits.max_body_bytes` may allow: what every store holds (MySQL's `TEXT`).
pub const BODY_MAX_BYTES_CEILING: usize = 65_535;
/// Longest `nonce` header of a SEND (the client's idempotency key), in bytes.
pub const NONCE_MAX_BYTES: usize = 64;

/// A value that breaks one of the domain rules.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RuleError {
    /// The username is shorter than 3 or longer than 32 characters.
    #[error("username must be 3 to 32 characters")]
    UsernameLength,
    /// The username holds something other than `a-z`, `0-9`, `_` and `.` (spaces included).
    #[error("username may contain only letters, digits, '_' and '.'")]
    UsernameCharacters,
    /// The username does not start with a letter.
    #[error("username must start with a letter")]
    UsernameStart,
    /// The username holds two dots in a row.
    #[error("username must not contain two dots in a row")]
    UsernameDoubleDot,
    /// The username ends with a dot.
    #[error("username must not end with a dot")]
    UsernameTrailingDot,
    /// The username starts with `feed.`: the users of ingest sources are named so.
    #[error("usernames starting with 'feed.' are reserved for feeds")]
    UsernameReserved,
    /// The password is shorter than 8 or longer than 128 characters.
    #[error("password must be 8 to 128 characters")]
    PasswordLength,
    /// The trimmed display name is empty or longer than 64 characters.
    #[error("display name must be 1 to 64 characters")]
    DisplayNameLength,
    /// The display name holds a control character.
    #[error("display name must not contain control characters")]
    DisplayNameControl,
    /// The trimmed room name is empty or longer than 100 characters.
    #[error("room name must be 1 to 100 characters")]
    RoomNameLength,
    /// The room name holds a control character.
    #[error("room name must not contain control characters")]
    RoomNameControl,
    /// The message body is empty.
    #[error("message body must not be empty")]
    BodyEmpty,
    /// The message body is larger than the configured limit.
    #[error("message body must be at most {max} bytes")]
    BodyTooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// The message body is not valid UTF-8.
    #[error("message body must be valid UTF-8 text")]
    BodyNotUtf8,
}

impl RuleError {
    /// Returns the stable machine-readable code of the field that failed, e.g. `invalid_username`.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::UsernameLength
            | RuleError::UsernameCharacters
            | RuleError::UsernameStart
            | RuleError::UsernameDoubleDot
            | RuleError::UsernameTrailingDot
            | RuleError::UsernameReserved => "invalid_username",
            RuleError::PasswordLength => "invalid_password",
            RuleError::DisplayNameLength | RuleError::DisplayNameControl => "invalid_display_name",
            RuleError::RoomNameLength | RuleError::RoomNameControl => "invalid_room_name",
            RuleError::BodyEmpty | RuleError::BodyTooLarge { .. } | RuleError::BodyNotUtf8 => {
                "invalid_body"
            }
        }
    }
}

/// Checks a username and returns its stored, lowercase form.
///
/// Nothing is trimmed: surrounding spaces are refused like any other character outside
/// `a-z 0-9 _ .` (ASCII letters of either case are accepted and lowercased).
pub fn validate_username(raw: &str) -> Result<String, RuleError> {
    let len = raw.chars().count();
    if !(USERNAME_MIN_CHARS..=USERNAME_MAX_CHARS).contains(&len) {
        return Err(RuleError::UsernameLength);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    if !raw.chars().all(allowed) {
        return Err(RuleError::UsernameCharacters);
    }
    // Only ASCII is left, so byte checks below see whole characters.
    let name = raw.to_ascii_lowercase();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(RuleError::UsernameStart);
    }
    if name.contains("..") {
        return Err(RuleError::UsernameDoubleDot);
    }
    if name.ends_with('.') {
        return Err(RuleError::UsernameTrailingDot);
    }
    if name.starts_with("feed.") {
        return Err(RuleError::UsernameReserved);
    }
    Ok(name)
}

/// Checks a password's length in characters (not bytes); any character is allowed.
pub fn validate_password(password: &str) -> Result<(), RuleError> {
    let len = password.chars().count();
    if (PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&len) {
        Ok(())
    } else {
        Err(RuleError::PasswordLength)
    }
}

/// Checks a display name and returns it trimmed.
pub fn validate_display_name(raw: &str) -> Result<String, RuleError> {
    validate_name(
        raw,
        DISPLAY_NAME_MAX_CHARS,
        RuleError::DisplayNameLength,
        RuleError::DisplayNameControl,
    )
}

/// Checks a room name and returns it trimmed.
pub fn validate_room_name(raw: &str) -> Result<String, RuleError> {
    validate_name(
        raw,
        ROOM_NAME_MAX_CHARS,
        RuleError::RoomNameLength,
        RuleError::RoomNameControl,
    )
}

/// Checks a message body (non-empty, at most `max_bytes`, valid UTF-8) and returns it as text.
pub fn validate_body(body: &[u8], max_bytes: usize) -> Result<&str, RuleError> {
    if body.is_empty() {
        return Err(RuleError::BodyEmpty);
    }
    if body.len() > max_bytes {
        return Err(RuleError::BodyTooLarge { max: max_bytes });
    }
    std::str::from_utf8(body).map_err(|_| RuleError::BodyNotUtf8)
}

fn validate_name(
    raw: &str,
    max_chars: usize,
    length: RuleError,
    control: RuleError,
) -> Result<String, RuleError> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 || len > max_chars {
        return Err(length);
    }
    if name.chars().any(is_control) {
        return Err(control);
    }
    Ok(name.to_owned())
}

/// Tells whether a character counts as a control character in a name: the Unicode `Cc` category,
/// plus the line and paragraph separators and the bidirectional overrides and isolates, which can
/// break a listing's layout or make one name display as another.
fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SQL: &str = "'; DROP TABLE users; --";

    #[test]
    fn username_is_lowercased() {
        assert_eq!(validate_username("Alice_01.x").as_deref(), Ok("alice_01.x"));
        assert_eq!(validate_username("bob").as_deref(), Ok("bob"));
    }

    #[test]
    fn username_length_boundaries() {
        assert_eq!(validate_username("ab"), Err(RuleError::UsernameLength));
        assert_eq!(validate_username(""), Err(RuleError::UsernameLength));
        assert!(validate_username("abc").is_ok());
        let max = format!("a{}", "b".repeat(31));
        assert_eq!(validate_username(&max), Ok(max.clone()));
        let over = format!("{max}c");
        assert_eq!(validate_username(&over), Err(RuleError::UsernameLength));
    }

    #[test]
    fn username_refuses_spaces_and_symbols() {
        for bad in [
            " alice", "alice ", "al ice", "al-ice", "al@ice", "al\tice", "al\0ice", SQL,
        ] {
            assert!(validate_username(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            validate_username(" alice"),
            Err(RuleError::UsernameCharacters)
        );
        assert_eq!(validate_username(SQL), Err(RuleError::UsernameCharacters));
    }

    #[test]
    fn username_refuses_non_ascii() {
        // Lookalikes: Cyrillic 'а' and a fullwidth 'ａ' must not pass for ASCII letters.
        assert_eq!(
            validate_username("\u{430}lice"),
            Err(RuleError::UsernameCharacters)
        );
        assert_eq!(
            validate_username("\u{ff41}lice"),
            Err(RuleError::UsernameCharacters)
        );
        assert_eq!(
            validate_username("josé"),
            Err(RuleError::UsernameCharacters)
        );
        // The length counts characters, so 33 two-byte letters fail on length, not bytes.
        assert_eq!(
            validate_username(&"é".repeat(33)),
            Err(RuleError::UsernameLength)
        );
    }

    #[test]
    fn username_shape_rules() {
        assert_eq!(validate_username("1alice"), Err(RuleError::UsernameStart));
        assert_eq!(validate_username("_alice"), Err(RuleError::UsernameStart));
        assert_eq!(validate_username(".alice"), Err(RuleError::UsernameStart));
        assert_eq!(
            validate_username("al..ice"),
            Err(RuleError::UsernameDoubleDot)
        );
        assert_eq!(
            validate_username("alice."),
            Err(RuleError::UsernameTrailingDot)
        );
        assert!(validate_username("a.l.i.c.e").is_ok());
        assert!(validate_username("alice_").is_ok());
        assert_eq!(
            validate_username("Feed.emsc"),
            Err(RuleError::UsernameReserved)
        );
        assert!(validate_username("feeder").is_ok());
    }

    #[test]
    fn password_length_counts_characters() {
        assert_eq!(validate_password("1234567"), Err(RuleError::PasswordLength));
        assert_eq!(validate_password("12345678"), Ok(()));
        assert_eq!(validate_password(&"x".repeat(128)), Ok(()));
        assert_eq!(
            validate_password(&"x".repeat(129)),
            Err(RuleError::PasswordLength)
        );
        // 8 characters, 24 bytes.
        assert_eq!(validate_password("日本語日本語日本"), Ok(()));
        // 128 characters, 512 bytes.
        assert_eq!(validate_password(&"🦀".repeat(128)), Ok(()));
        assert_eq!(
            validate_password(&"🦀".repeat(129)),
            Err(RuleError::PasswordLength)
        );
        assert_eq!(validate_password(SQL), Ok(()));
    }

    #[test]
    fn display_name_is_trimmed_and_checked() {
        assert_eq!(validate_display_name("  Alice  ").as_deref(), Ok("Alice"));
        assert_eq!(validate_display_name(SQL).as_deref(), Ok(SQL));
        assert_eq!(
            validate_display_name("Zoë 🦀 日本").as_deref(),
            Ok("Zoë 🦀 日本")
        );
        assert_eq!(
            validate_display_name("   "),
            Err(RuleError::DisplayNameLength)
        );
        assert_eq!(validate_display_name(""), Err(RuleError::DisplayNameLength));
        assert!(validate_display_name(&"é".repeat(64)).is_ok());
        assert_eq!(
            validate_display_name(&"é".repeat(65)),
            Err(RuleError::DisplayNameLength)
        );
        // Surrounding whitespace does not count toward the limit.
        assert!(validate_display_name(&format!(" {} ", "a".repeat(64))).is_ok());
    }

    #[test]
    fn names_refuse_control_characters() {
        for bad in [
            "a\nb",
            "a\u{0}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{202e}b",
            "a\u{2028}b",
            "a\u{2067}b",
        ] {
            assert_eq!(
                validate_display_name(bad),
                Err(RuleError::DisplayNameControl),
                "{bad:?}"
            );
            assert_eq!(
                validate_room_name(bad),
                Err(RuleError::RoomNameControl),
                "{bad:?}"
            );
        }
        // A trailing newline is whitespace and gets trimmed, not refused.
        assert_eq!(validate_room_name("general\n").as_deref(), Ok("general"));
        // Emoji sequences joined by ZWJ stay allowed.
        assert!(validate_display_name("👩\u{200d}💻").is_ok());
    }

    #[test]
    fn room_name_boundaries() {
        assert_eq!(validate_room_name(SQL).as_deref(), Ok(SQL));
        assert_eq!(validate_room_name(" x ").as_deref(), Ok("x"));
        assert_eq!(validate_room_name("\t"), Err(RuleError::RoomNameLength));
        assert!(validate_room_name(&"r".repeat(100)).is_ok());
        assert_eq!(
            validate_room_name(&"r".repeat(101)),
            Err(RuleError::RoomNameLength)
        );
    }

    #[test]
    fn body_rules() {
        assert_eq!(validate_body(b"hello", 5), Ok("hello"));
        assert_eq!(validate_body(b"", 5), Err(RuleError::BodyEmpty));
        assert_eq!(
            validate_body(b"hello!", 5),
            Err(RuleError::BodyTooLarge { max: 5 })
        );
        assert_eq!(validate_body(&[0xff, 0xfe], 5), Err(RuleError::BodyNotUtf8));
        // A multi-byte character cut at the end is invalid UTF-8.
        assert_eq!(
            validate_body(&"é".as_bytes()[..1], 5),
            Err(RuleError::BodyNotUtf8)
        );
        // The limit is in bytes: "ééé" is 3 characters but 6 bytes.
        assert_eq!(
            validate_body("ééé".as_bytes(), 5),
            Err(RuleError::BodyTooLarge { max: 5 })
        );
        assert_eq!(validate_body(SQL.as_bytes(), 4096), Ok(SQL));
    }

    #[test]
    fn messages_and_codes() {
        assert_eq!(
            RuleError::UsernameLength.to_string(),
            "username must be 3 to 32 characters"
        );
        assert_eq!(
            RuleError::UsernameCharacters.to_string(),
            "username may contain only letters, digits, '_' and '.'"
        );
        assert_eq!(
            RuleError::BodyTooLarge { max: 4096 }.to_string(),
            "message body must be at most 4096 bytes"
        );
        assert_eq!(RuleError::UsernameDoubleDot.code(), "invalid_username");
        assert_eq!(RuleError::PasswordLength.code(), "invalid_password");
        assert_eq!(RuleError::DisplayNameControl.code(), "invalid_display_name");
        assert_eq!(RuleError::RoomNameLength.code(), "invalid_room_name");
        assert_eq!(RuleError::BodyNotUtf8.code(), "invalid_body");
    }

    proptest! {
        #[test]
        fn accepted_usernames_keep_the_invariants(raw in "\\PC{0,40}") {
            if let Ok(name) = validate_username(&raw) {
                prop_assert!((3..=32).contains(&name.len()));
                let allowed =
                    |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.';
                prop_assert!(name.bytes().all(allowed));
                prop_assert!(name.as_bytes()[0].is_ascii_lowercase());
                prop_assert!(!name.contains("..") && !name.ends_with('.'));
                prop_assert_eq!(name, raw.to_ascii_lowercase());
            }
        }

        #[test]
        fn well_formed_usernames_are_accepted(raw in "[a-zA-Z][a-zA-Z0-9_]{2,31}") {
            prop_assert_eq!(validate_username(&raw), Ok(raw.to_ascii_lowercase()));
        }

        #[test]
        fn accepted_names_are_trimmed_and_clean(raw in "\\PC{0,120}") {
            if let Ok(name) = validate_room_name(&raw) {
                prop_assert_eq!(name.as_str(), raw.trim());
                prop_assert!((1..=100).contains(&name.chars().count()));
            }
        }
    }
}
