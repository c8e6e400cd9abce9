//! URLs as they may appear in logs and error messages: passwords and query values
//! (presigned-URL signatures, tokens) replaced by `REDACTED`.

use url::Url;

const MASK: &str = "REDACTED";

/// The URL with its password and every query value masked.
pub fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some(MASK));
    }
    if shown.query().is_some() {
        let pairs: Vec<String> = url
            .query_pairs()
            .map(|(name, _)| format!("{name}={MASK}"))
            .collect();
        shown.set_query(Some(&pairs.join("&")));
    }
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_password_and_query_values() {
        let url =
            Url::parse("https://bob:hunter2@example.com/a.apkg?X-Amz-Signature=abc&v=1").unwrap();
        let shown = redact_url(&url);
        assert_eq!(
            shown,
            "https://bob:REDACTED@example.com/a.apkg?X-Amz-Signature=REDACTED&v=REDACTED"
        );
    }

    #[test]
    fn leaves_plain_urls_alone() {
        let url = Url::parse("https://example.com/a.apkg").unwrap();
        assert_eq!(redact_url(&url), "https://example.com/a.apkg");
    }
}
