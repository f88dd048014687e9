//! The `parley` binary's pieces: the command line, the async drivers around
//! the sans-IO cores, and the HTTP/WebSocket front, one folder per part.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod conference;
pub mod conn_limit;
pub mod db;
pub mod http;
pub mod ice_servers;
pub mod live_settings;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod schedule;
pub mod serve;
pub mod shutdown;
pub mod tls;
pub mod turn;
