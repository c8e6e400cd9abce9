pub mod agents;
pub mod invoke;
pub mod management;
pub mod observe;
pub mod runtime;
pub mod surface;
