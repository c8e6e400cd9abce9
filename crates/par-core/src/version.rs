//! Ordering of agent versions, so the newest mounted version is the active one.

use std::cmp::Ordering;

/// Compares dotted versions part by part, numerically where both parts are numbers
/// (`1.10.0` > `1.9.0`), textually otherwise; a release sorts after its pre-release
/// (`1.0.0` > `1.0.0-rc1`), and pre-releases compare the same way (`rc.10` > `rc.2`).
pub(crate) fn compare(a: &str, b: &str) -> Ordering {
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
        (Some(x), Some(y)) => compare_pre(x, y),
    }
}

/// Pre-releases part by part too (`alpha.10` > `alpha.2`); more parts sort later.
fn compare_pre(x: &str, y: &str) -> Ordering {
    let (mut xs, mut ys) = (x.split('.'), y.split('.'));
    loop {
        let ord = match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => compare_part(a, b),
        };
        if ord != Ordering::Equal {
            return ord;
        }
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

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn missing_parts_count_as_zero() {
        assert_eq!(compare("1", "1.0.0"), Ordering::Equal);
        assert_eq!(compare("1.0.1", "1"), Ordering::Greater);
    }

    #[test]
    fn pre_releases_order_among_themselves_and_before_the_release() {
        assert_eq!(compare("1.0.0-alpha", "1.0.0-beta"), Ordering::Less);
        assert_eq!(compare("1.0.0-rc1", "1.0.0-rc1"), Ordering::Equal);
        assert_eq!(compare("1.0.0-rc1", "1.0.0"), Ordering::Less);
        assert_eq!(
            compare("1.0.1-rc1", "1.0.0"),
            Ordering::Greater,
            "core first"
        );
    }

    #[test]
    fn numeric_pre_release_parts_compare_as_numbers() {
        assert_eq!(
            compare("1.0.0-alpha.10", "1.0.0-alpha.2"),
            Ordering::Greater
        );
        assert_eq!(compare("1.0.0-rc.2", "1.0.0-rc.10"), Ordering::Less);
        assert_eq!(compare("1.0.0-alpha", "1.0.0-alpha.1"), Ordering::Less);
    }

    #[test]
    fn text_parts_compare_as_text() {
        assert_eq!(compare("1.0.b", "1.0.a"), Ordering::Greater);
        assert_eq!(compare("2024.x", "2024.x"), Ordering::Equal);
    }

    #[test]
    fn comparison_is_antisymmetric() {
        let versions = [
            "0.1",
            "1.0.0-rc.1",
            "1.0.0",
            "1.2",
            "1.10.0",
            "2.0.0-beta",
            "10",
        ];
        for a in versions {
            for b in versions {
                assert_eq!(compare(a, b), compare(b, a).reverse(), "{a} vs {b}");
            }
        }
    }
}
