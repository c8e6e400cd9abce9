//! A metric family that admits a fixed number of label sets and folds the rest into one
//! overflow series, so a flood of distinct values cannot grow memory or the exposition.

use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use prometheus_client::metrics::family::{Family, MetricConstructor};

/// The label set that stands for every label set past the cap.
pub(crate) trait Overflow {
    fn overflow() -> Self;
}

/// A [`Family`] with at most `cap` admitted label sets, plus the overflow series.
#[derive(Debug)]
pub(crate) struct Bounded<L, M, C = fn() -> M> {
    family: Family<L, M, C>,
    admitted: Mutex<usize>,
    cap: usize,
}

impl<L, M, C> Bounded<L, M, C>
where
    L: Clone + Hash + Eq + Overflow,
    M: Clone,
    C: MetricConstructor<M>,
{
    /// Wraps `family`, which must be empty; register a clone of it with the registry.
    pub(crate) fn new(family: Family<L, M, C>, cap: usize) -> Self {
        Bounded {
            family,
            admitted: Mutex::new(0),
            cap,
        }
    }

    /// The metric for `labels`, or the overflow metric when the family is full.
    pub(crate) fn get(&self, labels: &L) -> M {
        if let Some(metric) = self.family.get(labels) {
            return metric.clone();
        }
        self.admit(labels)
    }

    /// Slow path, taken once per new label set. The mutex makes check-and-create atomic
    /// so concurrent first calls cannot overshoot the cap; it is never held across an
    /// await, so a std mutex is right.
    fn admit(&self, labels: &L) -> M {
        let mut admitted = self.admitted.lock().unwrap_or_else(PoisonError::into_inner);
        if self.family.get(labels).is_none() {
            if *admitted >= self.cap {
                return self.family.get_or_create_owned(&L::overflow());
            }
            *admitted += 1;
        }
        self.family.get_or_create_owned(labels)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq)]
    struct Id(String);

    impl Overflow for Id {
        fn overflow() -> Self {
            Id("other".into())
        }
    }

    #[test]
    fn folds_label_sets_past_the_cap() {
        let family = Family::<Id, Counter>::default();
        let bounded = Bounded::new(family.clone(), 3);
        for i in 0..10 {
            bounded.get(&Id(format!("id-{i}"))).inc();
        }
        bounded.get(&Id("id-1".into())).inc();
        assert_eq!(family.len(), 4);
        assert_eq!(family.get(&Id::overflow()).unwrap().get(), 7);
        assert_eq!(family.get(&Id("id-1".into())).unwrap().get(), 2);
    }
}
