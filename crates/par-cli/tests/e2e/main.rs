//! End-to-end tests: the real `par` binary, real packages built by the real kits, real
//! Python workers, real HTTP.

mod harness;

mod a2a;
mod agent_calls;
mod auth;
mod bounds;
mod browser;
mod chaos;
mod cli;
mod client;
mod connections;
mod console;
mod dashboard;
mod environments;
mod examples;
mod fleet;
mod hardening;
mod hardening_limits;
mod health;
mod hostile;
mod idle;
mod invoke;
mod launcher;
mod lifecycle;
mod mcp;
mod observability;
mod oidc;
mod openapi;
mod protocol_clients;
mod registry;
mod run_client;
mod runs;
mod runs_durability;
mod sandbox;
mod sdk_server;
mod security;
mod serving;
mod surfaces;
mod tracing_export;
mod usage_postgres;
mod websocket;
mod workers_auto;
mod zygote;
