//! [`KeyPolicy`]: when the key set rotates, which key signs, and how long each key verifies — pure
//! decisions over the generations' `signs_from_ms` (ordered by generation), the same on every node
//! that has the same `[auth]` settings and rows.

use std::time::Duration;

use super::AuthError;
use crate::config::AuthConfig;

/// The publication lead of a new key, in reloads: a key is added `PUBLISH_LEAD_REFRESHES ×
/// key_refresh_secs` before it signs, so every node reloads the set at least twice in between (it
/// may notice the rotation up to one interval late).
pub const PUBLISH_LEAD_REFRESHES: i64 = 3;

/// How the key set rotates, from the `[auth]` settings. All times in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// How long a key signs before the next one takes over (`key_rotation_secs`).
    rotation_ms: i64,
    /// How often a node reloads the set (`key_refresh_secs`).
    refresh_ms: i64,
    /// Longest life of a token a key signs: the longer of the access and the refresh token's.
    token_ttl_ms: i64,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy::from_config(&AuthConfig::default()).expect("the default settings are valid")
    }
}

impl KeyPolicy {
    /// Reads the policy from `[auth]`: `key_refresh_secs` at least 1, `key_rotation_secs` at least
    /// `4 × key_refresh_secs` (more than the publication lead, so at most one key waits to sign).
    pub fn from_config(auth: &AuthConfig) -> Result<KeyPolicy, AuthError> {
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if auth.key_refresh_secs == 0 {
            return Err(AuthError::KeySetting(
                "auth.key_refresh_secs must be at least 1".into(),
            ));
        }
        let min_rotation = auth
            .key_refresh_secs
            .saturating_mul(PUBLISH_LEAD_REFRESHES.unsigned_abs() + 1);
        if auth.key_rotation_secs < min_rotation {
            return Err(AuthError::KeySetting(format!(
                "auth.key_rotation_secs is {}, below {min_rotation} (4 × auth.key_refresh_secs)",
                auth.key_rotation_secs
            )));
        }
        Ok(KeyPolicy {
            rotation_ms: ms(auth.key_rotation_secs),
            refresh_ms: ms(auth.key_refresh_secs),
            token_ttl_ms: ms(auth.access_ttl_secs.max(auth.refresh_ttl_secs)),
        })
    }

    /// Returns how often a node reloads the set.
    pub fn refresh_every(&self) -> Duration {
        Duration::from_millis(self.refresh_ms.unsigned_abs())
    }

    /// Returns how long before it signs a new key is published; also the grace a retired key gets
    /// after its last token expired, for clocks that disagree.
    pub fn lead_ms(&self) -> i64 {
        self.refresh_ms.saturating_mul(PUBLISH_LEAD_REFRESHES)
    }

    /// Returns when the newest key's successor starts signing, if it is due at `now_ms`: the newest
    /// key has signed (or will have) for the rotation period less the lead. It signs a full period
    /// after the newest, or a lead from now when the set was left alone longer (no node ran).
    pub(crate) fn next_signs_from(&self, newest_signs_from_ms: i64, now_ms: i64) -> Option<i64> {
        let due = newest_signs_from_ms.saturating_add(self.rotation_ms - self.lead_ms());
        (now_ms >= due).then(|| {
            newest_signs_from_ms
                .saturating_add(self.rotation_ms)
                .max(now_ms.saturating_add(self.lead_ms()))
        })
    }

    /// Returns until when a key verifies, given when the next generation starts signing (`None`:
    /// it is the newest, which verifies as long as it is the newest).
    pub(crate) fn verify_until(&self, next_signs_from_ms: Option<i64>) -> Option<i64> {
        next_signs_from_ms.map(|retired| {
            retired
                .saturating_add(self.token_ttl_ms)
                .saturating_add(self.lead_ms())
        })
    }

    /// Returns how many of the oldest keys (of `signs_from_ms`, ordered by generation) are past
    /// their verify window at `now_ms`: they may be deleted. Never the newest.
    pub(crate) fn expired(&self, signs_from_ms: &[i64], now_ms: i64) -> usize {
        signs_from_ms
            .windows(2)
            .take_while(|pair| {
                self.verify_until(Some(pair[1]))
                    .is_some_and(|v| v <= now_ms)
            })
            .count()
    }
}

/// Returns the index of the key that signs at `now_ms` among `keys` (ordered by generation, each
/// starting to sign at `signs_from_ms(key)`): the newest whose signing has started, else (only a
/// clock far behind the others' sees this) the oldest.
pub(crate) fn signer<T>(keys: &[T], signs_from_ms: impl Fn(&T) -> i64, now_ms: i64) -> usize {
    keys.iter()
        .rposition(|k| signs_from_ms(k) <= now_ms)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    /// Rotation 100 s, refresh 10 s (lead 30 s), tokens live up to 60 s.
    fn policy() -> KeyPolicy {
        KeyPolicy::from_config(&AuthConfig {
            key_rotation_secs: 100,
            key_refresh_secs: 10,
            access_ttl_secs: 60,
            refresh_ttl_secs: 20,
            ..AuthConfig::default()
        })
        .expect("valid")
    }

    #[test]
    fn defaults_rotate_monthly_and_reload_every_minute() {
        let p = KeyPolicy::default();
        assert_eq!(p.rotation_ms, 30 * 24 * 3600 * S);
        assert_eq!(p.refresh_every(), Duration::from_secs(60));
        assert_eq!(p.lead_ms(), 180 * S);
        // Refresh tokens live 30 days: a retired key verifies that long.
        assert_eq!(p.token_ttl_ms, 30 * 24 * 3600 * S);
    }

    #[test]
    fn settings_out_of_range_are_refused() {
        let with = |rotation, refresh| {
            KeyPolicy::from_config(&AuthConfig {
                key_rotation_secs: rotation,
                key_refresh_secs: refresh,
                ..AuthConfig::default()
            })
        };
        assert!(matches!(with(100, 0), Err(AuthError::KeySetting(_))));
        assert!(matches!(with(39, 10), Err(AuthError::KeySetting(_))));
        assert!(with(40, 10).is_ok());
        assert!(with(u64::MAX, u64::MAX / 8).is_ok(), "no overflow");
    }

    #[test]
    fn the_next_key_is_published_a_lead_before_it_signs() {
        let p = policy();
        // Key 1 signs from 0: the next is due at 100 − 30 = 70 s and signs from 100 s.
        assert_eq!(p.next_signs_from(0, 69 * S), None);
        assert_eq!(p.next_signs_from(0, 70 * S), Some(100 * S));
        // Noticed late (a node was down), still a full lead ahead.
        assert_eq!(p.next_signs_from(0, 85 * S), Some(115 * S));
        assert_eq!(p.next_signs_from(0, 1000 * S), Some(1030 * S));
        // A key not signing yet is never replaced before its own period.
        assert_eq!(p.next_signs_from(100 * S, 75 * S), None);
    }

    #[test]
    fn a_retired_key_verifies_until_its_last_token_expired_and_a_lead() {
        let p = policy();
        assert_eq!(p.verify_until(None), None);
        // Retired at 100 s, tokens of up to 60 s, lead 30 s.
        assert_eq!(p.verify_until(Some(100 * S)), Some(190 * S));
        let set = [0, 100 * S, 200 * S];
        assert_eq!(p.expired(&set, 189_999), 0);
        assert_eq!(p.expired(&set, 190 * S), 1);
        assert_eq!(p.expired(&set, 290 * S), 2);
        assert_eq!(p.expired(&set, i64::MAX), 2, "never the newest");
        assert_eq!(p.expired(&[0], i64::MAX), 0);
        assert_eq!(p.expired(&[], 0), 0);
    }

    #[test]
    fn the_newest_started_key_signs() {
        let set = [0, 100 * S, 200 * S];
        let at = |now| signer(&set, |&s| s, now);
        assert_eq!(at(50 * S), 0);
        assert_eq!(at(100 * S), 1);
        assert_eq!(at(199 * S), 1);
        assert_eq!(at(500 * S), 2);
        assert_eq!(at(-1), 0, "a clock behind every key signs with the oldest");
    }
}
