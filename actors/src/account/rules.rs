//! What a client's file name may become: metadata only, never part of a key or a path.

/// Longest file name a client may send, in characters (before it is cleaned).
pub const MAX_REQUEST_FILENAME_CHARS: usize = 1024;

/// Longest kept file name, in bytes.
pub const MAX_FILENAME_BYTES: usize = 255;

/// Cleans a client's file name: its last path segment (after `/` or `\`), without control
/// characters, leading dots or surrounding blanks, cut to [`MAX_FILENAME_BYTES`] on a character
/// boundary; `file` when nothing is left.
pub fn clean_filename(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let kept: String = last.chars().filter(|c| !c.is_control()).collect();
    let kept = kept.trim().trim_start_matches('.').trim();
    let mut end = kept.len().min(MAX_FILENAME_BYTES);
    while !kept.is_char_boundary(end) {
        end -= 1;
    }
    match &kept[..end] {
        "" => "file".to_owned(),
        cut => cut.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_paths_controls_and_hidden_dots() {
        for (given, kept) in [
            ("photo.png", "photo.png"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\windows\\system.ini", "system.ini"),
            ("/abs/path/a b.jpg", "a b.jpg"),
            ("..", "file"),
            ("", "file"),
            ("dir/", "file"),
            (".hidden", "hidden"),
            ("  spaced  ", "spaced"),
            ("a\u{0}b\nc\u{7f}.txt", "abc.txt"),
            ("r\u{e9}sum\u{e9}.pdf", "r\u{e9}sum\u{e9}.pdf"),
        ] {
            assert_eq!(clean_filename(given), kept, "{given:?}");
        }
        let long = "\u{e9}".repeat(200);
        let cut = clean_filename(&long);
        assert!(cut.len() <= MAX_FILENAME_BYTES && cut.chars().all(|c| c == '\u{e9}'));
    }
}
