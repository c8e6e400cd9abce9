//! Value parsers for the OpenTelemetry environment variables. Every error names the
//! variable; none repeats a header value, since those usually carry credentials.

use std::collections::HashMap;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use reqwest::Url;

/// The variable's value, with an empty (or blank) value treated as unset, as the SDK
/// environment specification requires.
pub(crate) fn get<'a>(vars: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// The signal-specific variable when set, else the general one, with the name that was
/// used so errors point at the right variable.
pub(crate) fn get_either<'a>(
    vars: &'a HashMap<String, String>,
    specific: &'static str,
    general: &'static str,
) -> Option<(&'static str, &'a str)> {
    get(vars, specific)
        .map(|v| (specific, v))
        .or_else(|| get(vars, general).map(|v| (general, v)))
}

/// Booleans are true only for a case-insensitive `true`; anything else is false, with a
/// warning for values other than `false` (the specification's rule).
pub(crate) fn boolean(vars: &HashMap<String, String>, name: &str) -> bool {
    match get(vars, name) {
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => {
            tracing::warn!(
                variable = name,
                value = v,
                "not true or false; taken as false"
            );
            false
        }
        None => false,
    }
}

/// A non-negative integer of milliseconds.
pub(crate) fn millis(name: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{name}: expected a whole number of milliseconds, got {value:?}"))
}

/// A positive count (queue and batch sizes).
pub(crate) fn count(name: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!(
            "{name}: expected a positive whole number, got {value:?}"
        )),
    }
}

/// An `http` or `https` URL. The value is not repeated in the error: a URL may carry a
/// password.
pub(crate) fn url(name: &str, value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{name}: not a valid URL ({e})"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "{name}: the scheme must be http or https, not {other:?}"
        )),
    }
}

/// The per-signal URL built from `OTEL_EXPORTER_OTLP_ENDPOINT`: `v1/traces` appended to
/// the base path, with exactly one slash between them.
pub(crate) fn append_traces_path(mut base: Url) -> Url {
    let path = base.path().trim_end_matches('/').to_string();
    base.set_path(&format!("{path}/v1/traces"));
    base
}

/// A `key=value,key2=value2` list (W3C Baggage without properties), values
/// percent-decoded. Used for headers and resource attributes alike.
pub(crate) fn key_values(name: &str, value: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (i, entry) in value.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((key, val)) = entry.split_once('=') else {
            return Err(format!("{name}: entry {} is not key=value", i + 1));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("{name}: entry {} has an empty key", i + 1));
        }
        let val = percent_decode_str(val.trim())
            .decode_utf8()
            .map_err(|_| format!("{name}: the value of {key:?} is not UTF-8 once decoded"))?;
        pairs.push((key.to_string(), val.into_owned()));
    }
    Ok(pairs)
}
