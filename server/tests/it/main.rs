//! Integration tests: the real server on 127.0.0.1:0 over a fresh SQLite file or a fresh
//! PostgreSQL database. Every database test runs on both (see `both_databases!`).

mod common;

mod admin_actions;
mod api_auth;
mod api_listing;
mod api_openapi;
mod api_webhooks;
mod cli;
mod engine;
mod engine_claims;
mod engine_processes;
mod flow;
mod metrics;
mod migrations;
mod notices;
mod ordered;
mod retention;
mod security;
mod sign_in;
mod startup;
mod storage_faults;
mod traces;
