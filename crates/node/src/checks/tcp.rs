//! `port` (alias `tcp`): UP when a TCP connection to `hostname:port` opens.

use super::{Outcome, elapsed_ms};
use std::time::Instant;

pub async fn check(hostname: &str, port: u16) -> Outcome {
    let started = Instant::now();
    match tokio::net::TcpStream::connect((hostname, port)).await {
        Ok(_) => Outcome::up(
            format!("{hostname}:{port} is open"),
            Some(elapsed_ms(started)),
        ),
        Err(e) => Outcome::down(format!("{hostname}:{port}: {e}")),
    }
}
