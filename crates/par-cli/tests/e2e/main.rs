//! End-to-end tests: the real `par` binary, real packages built by the real kits, real
//! Python workers, real HTTP.

mod harness;

mod agent_calls;
mod auth;
mod bounds;
mod cli;
mod connections;
mod dashboard;
mod environments;
mod examples;
mod hardening;
mod hostile;
mod invoke;
mod lifecycle;
mod observability;
mod oidc;
mod registry;
mod sandbox;
mod sdk_server;
mod security;
mod serving;
mod surfaces;
mod tracing_export;
mod usage_postgres;
