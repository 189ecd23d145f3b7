//! The end-to-end tests of contacthub, one module per subject, linked as one test binary.

mod access;
mod adapters;
mod audit;
mod browser;
mod citizens;
mod courrier;
mod docs;
mod durability;
mod erasure;
mod families;
mod faults;
mod isolation;
mod kafka_faults;
mod kafka_secured;
mod migrate;
mod need_to_know;
mod oidc;
mod ops_cli;
mod outbound;
mod requests;
mod review;
mod sealing;
mod tidy;
mod timeline;
mod tls;
mod web;
