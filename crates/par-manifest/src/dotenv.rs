//! The package's `.env` file, read exactly as the kit's dev server reads it.
//!
//! Ground truth is `pixell.utils.parse_dotenv` (identical in kit 0.4.12 and pixell-sdk
//! 0.5.4), which agent authors test against with `pixell run-dev`. Matching it means an
//! agent sees the same variables under PAR as on the author's machine.

use std::collections::HashMap;

/// Parses `.env` text into `(key, value)` pairs in first-appearance order.
///
/// Rules, following the kit:
/// * lines are split like Python's `str.splitlines` (`\n`, `\r\n`, `\r` and the other
///   Unicode line breaks), then trimmed;
/// * empty lines, lines starting with `#` and lines without `=` are skipped;
/// * the line is split at the first `=`; key and value are trimmed;
/// * one pair of matching surrounding quotes (`'...'` or `"..."`) is removed from the value;
///   nothing else is unescaped, a `#` after the value is part of it, and `${X}` is not
///   interpolated;
/// * a later duplicate replaces the value but keeps the first position (a Python dict).
///
/// Two deliberate differences, both invisible to agent code:
/// * `export X=1` is **not** special. The kit stores it under the key `"export X"`, which no
///   program can read as `X`; PAR skips it, because keys that are not valid variable names
///   (`^[A-Za-z_][A-Za-z0-9_]*$`) are skipped. Either way `X` is not set.
/// * A leading UTF-8 byte order mark is dropped, so an editor-added BOM does not hide the
///   first variable.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut pairs: Vec<(String, String)> = Vec::new();
    // Position of each key in `pairs`, so a hostile file with many lines stays linear.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (key, value) in text.split(is_line_break).filter_map(parse_line) {
        match index.get(&key) {
            Some(&at) => pairs[at].1 = value,
            None => {
                index.insert(key.clone(), pairs.len());
                pairs.push((key, value));
            }
        }
    }
    pairs
}

fn parse_line(raw: &str) -> Option<(String, String)> {
    let line = raw.trim_matches(is_python_space);
    if line.starts_with('#') {
        return None;
    }
    let (key, value) = line.split_once('=')?;
    let key = key.trim_matches(is_python_space);
    if !is_env_name(key) {
        return None;
    }
    let value = unquote(value.trim_matches(is_python_space));
    Some((key.to_owned(), value.to_owned()))
}

/// Removes one pair of matching quotes; a lone `"` stays, as in the kit.
fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        let inner = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote));
        if let Some(inner) = inner {
            return inner;
        }
    }
    value
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`: the portable environment variable name.
fn is_env_name(key: &str) -> bool {
    crate::model::is_identifier(key)
}

/// The separators of Python's `str.splitlines`; a `\r\n` pair leaves an empty piece, which
/// is skipped like any blank line.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{0b}'
            | '\u{0c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// Python's `str.strip()` also strips the separator controls U+001C..U+001F.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn simple_pairs_in_order() {
        let text = "B=2\nA=1\n";
        assert_eq!(parse_dotenv(text), pairs(&[("B", "2"), ("A", "1")]));
    }

    #[test]
    fn comments_blank_lines_and_lines_without_equals_are_skipped() {
        let text = "# comment\n\n   \n  # indented comment\nJUSTAWORD\nA=1\n";
        assert_eq!(parse_dotenv(text), pairs(&[("A", "1")]));
    }

    #[test]
    fn whitespace_around_key_and_value_is_trimmed() {
        let text = "  KEY  =   some value  \r\n\tTAB\t=\tx\t";
        assert_eq!(
            parse_dotenv(text),
            pairs(&[("KEY", "some value"), ("TAB", "x")])
        );
    }

    #[test]
    fn one_pair_of_matching_quotes_is_removed() {
        let text = "D=\"double\"\nS='single'\nM=\"mixed'\nN=\"\"\"x\"\"\"\nL=\"\nE=''\nIN=a\"b\"";
        assert_eq!(
            parse_dotenv(text),
            pairs(&[
                ("D", "double"),
                ("S", "single"),
                ("M", "\"mixed'"),
                ("N", "\"\"x\"\""),
                ("L", "\""),
                ("E", ""),
                ("IN", "a\"b\""),
            ])
        );
    }

    #[test]
    fn only_the_first_equals_splits() {
        let text = "URL=postgres://u:p@h/db?sslmode=require\nEMPTY=\n=novalue";
        assert_eq!(
            parse_dotenv(text),
            pairs(&[
                ("URL", "postgres://u:p@h/db?sslmode=require"),
                ("EMPTY", "")
            ])
        );
    }

    #[test]
    fn no_interpolation_and_no_inline_comments() {
        let text = "A=1\nB=${A}\nC=value # not a comment";
        assert_eq!(
            parse_dotenv(text),
            pairs(&[("A", "1"), ("B", "${A}"), ("C", "value # not a comment")])
        );
    }

    #[test]
    fn export_prefix_is_not_special_so_the_line_is_skipped() {
        let text = "export X=1\nY=2";
        assert_eq!(parse_dotenv(text), pairs(&[("Y", "2")]));
    }

    #[test]
    fn invalid_names_are_skipped() {
        let text = "1ABC=x\nMY-VAR=x\nA.B=x\nGOOD_1=y\n_U=z";
        assert_eq!(parse_dotenv(text), pairs(&[("GOOD_1", "y"), ("_U", "z")]));
    }

    #[test]
    fn later_duplicates_win_in_first_position() {
        let text = "A=1\nB=2\nA=3";
        assert_eq!(parse_dotenv(text), pairs(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn python_line_breaks_and_bom() {
        let text = "\u{feff}A=1\rB=2\u{2028}C=3";
        assert_eq!(
            parse_dotenv(text),
            pairs(&[("A", "1"), ("B", "2"), ("C", "3")])
        );
    }

    #[test]
    fn multi_line_values_are_not_supported() {
        let text = "A=\"line1\nline2\"";
        assert_eq!(parse_dotenv(text), pairs(&[("A", "\"line1")]));
    }

    /// The kit 0.4.12 `parse_dotenv` on this input gives
    /// `[('\ufeffA','1'), ('export X','1'), ('KEY','some value'), ('D','double'),
    /// ('M','"mixed\''), ('L','"'), ('URL','a=b'), ('','novalue'), ('MY-VAR','x'), ('A','3'),
    /// ('C','value # c'), ('B','${A}'), ('S','sep')]`. PAR drops the BOM (so `A` is one
    /// key) and skips the keys no program can read as a variable.
    #[test]
    fn matches_the_kit_on_a_mixed_file() {
        let text =
            "\u{feff}A=1\r\nexport X=1\n  KEY  =   some value  \nD=\"double\"\nM=\"mixed'\nL=\"\n\
                    URL=a=b\n=novalue\nMY-VAR=x\nA=3\nC=value # c\nB=${A}\n\u{1c}S=sep\u{1f}\n";
        assert_eq!(
            parse_dotenv(text),
            pairs(&[
                ("A", "3"),
                ("KEY", "some value"),
                ("D", "double"),
                ("M", "\"mixed'"),
                ("L", "\""),
                ("URL", "a=b"),
                ("C", "value # c"),
                ("B", "${A}"),
                ("S", "sep"),
            ])
        );
    }
}
