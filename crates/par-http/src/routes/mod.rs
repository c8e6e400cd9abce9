pub mod agents;
pub mod invoke;
pub mod runtime;
