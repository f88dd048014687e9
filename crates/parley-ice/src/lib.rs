//! Which ICE servers Parley's clients get, and whether they work.
//!
//! [`compose`](compose::compose) builds a participant's list from the
//! settings, Parley's own TURN server and a TURN provider's latest answer;
//! [`provider`] turns providers into HTTP requests and their answers into
//! servers; [`probe`] checks one STUN or TURN URL the way a browser would.
//! All sans-IO: the binary does the HTTP, the sockets and the clock.

pub mod compose;
pub mod probe;
pub mod provider;
