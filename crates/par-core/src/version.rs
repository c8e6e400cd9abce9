//! Ordering of agent versions, so the newest mounted version is the active one.

use std::cmp::Ordering;

/// Compares dotted versions part by part, numerically where both parts are numbers
/// (`1.10.0` > `1.9.0`), textually otherwise; a release sorts after its pre-release
/// (`1.0.0` > `1.0.0-rc1`).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a_core, a_pre) = split_pre(a);
    let (b_core, b_pre) = split_pre(b);
    let mut a_parts = a_core.split('.');
    let mut b_parts = b_core.split('.');
    loop {
        match (a_parts.next(), b_parts.next()) {
            (None, None) => break,
            (x, y) => {
                let ord = compare_part(x.unwrap_or("0"), y.unwrap_or("0"));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
    match (a_pre, b_pre) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    }
}

fn split_pre(v: &str) -> (&str, Option<&str>) {
    match v.split_once(['-', '+']) {
        Some((core, pre)) => (core, Some(pre)),
        None => (v, None),
    }
}

fn compare_part(x: &str, y: &str) -> Ordering {
    match (x.parse::<u64>(), y.parse::<u64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => x.cmp(y),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_parts_compare_as_numbers() {
        assert_eq!(compare("1.10.0", "1.9.0"), Ordering::Greater);
        assert_eq!(compare("2.0.0", "2.0"), Ordering::Equal);
        assert_eq!(compare("1.0.0", "1.0.0-rc1"), Ordering::Greater);
        assert_eq!(compare("0.1.0", "1.0.0"), Ordering::Less);
    }
}
