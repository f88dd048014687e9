//! The `parley` binary's pieces: command line, configuration, the async
//! drivers around the sans-IO cores, and the HTTP/WebSocket front.

pub mod acme;
pub mod admin_cli;
pub mod auth;
pub mod batch;
pub mod candidates;
pub mod cli;
pub mod clock;
pub mod conference;
pub mod config;
pub mod conn_limit;
pub mod db;
pub mod held;
pub mod http;
pub mod ice;
pub mod ice_tcp;
pub mod load;
pub mod logging;
pub mod media;
pub mod media_worker;
pub mod meetings;
pub mod metrics;
pub mod one_port;
pub mod schedule;
pub mod serve;
pub mod settings;
pub mod signal;
pub mod tls;
pub mod turn;
pub mod udp;
pub mod web;
