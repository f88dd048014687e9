//! The `parley` binary's pieces: command line, configuration, the async
//! drivers around the sans-IO cores, and the HTTP/WebSocket front.

pub mod candidates;
pub mod cli;
pub mod conference;
pub mod config;
pub mod http;
pub mod metrics;
pub mod serve;
pub mod signal;
pub mod turn;
pub mod udp;
pub mod web;
