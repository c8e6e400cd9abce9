//! Label sets of the metric families, and the closed sets of values some labels take.

use prometheus_client::encoding::EncodeLabelSet;

use super::bounded::Overflow;
use super::OVERFLOW;

/// Declares a label set of free-text labels whose overflow series has every label set to
/// [`OVERFLOW`].
macro_rules! free_text_labels {
    ($name:ident { $($field:ident),+ }) => {
        #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
        pub(crate) struct $name {
            $(pub(crate) $field: String,)+
        }

        impl Overflow for $name {
            fn overflow() -> Self {
                $name { $($field: OVERFLOW.to_owned(),)+ }
            }
        }
    };
}

free_text_labels!(InvocationLabels {
    agent,
    version,
    code
});
free_text_labels!(AgentLabels { agent });
free_text_labels!(PackageLabels { package });
free_text_labels!(ReasonLabels { reason });
free_text_labels!(RouteLabels { route, status });
free_text_labels!(EgressLabels { package, outcome });
free_text_labels!(EgressBytesLabels { package, direction });

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PhaseLabels {
    pub(crate) phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabels {
    pub(crate) result: &'static str,
}

/// Declares a closed set of label values with `as_str` and `ALL`.
macro_rules! label_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            /// Every value, so the series can be created at zero up front.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }
        }
    };
}

label_values!(
    /// How a package load ended (`par_package_loads_total{outcome}`).
    LoadOutcome { Ok => "ok", Failed => "failed" }
);

label_values!(
    /// A step of loading a package (`par_package_load_phase_seconds{phase}`).
    LoadPhase {
        Fetch => "fetch",
        Verify => "verify",
        Manifest => "manifest",
        Extract => "extract",
        Environment => "environment",
        Start => "start",
        Mount => "mount",
    }
);

label_values!(
    /// What one registry poll found (`par_registry_polls_total{result}`).
    PollResult { Updated => "updated", NotModified => "not_modified", Failed => "failed" }
);
