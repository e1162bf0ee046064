//! `port` (alias `tcp`): UP when a TCP connection to `hostname:port` opens.

use super::{CheckContext, Outcome, elapsed_ms};
use std::time::Instant;

pub async fn check(hostname: &str, port: u16, ctx: &CheckContext) -> Outcome {
    let started = Instant::now();
    let addrs = match ctx.permitted(hostname, port).await {
        Ok(a) => a,
        Err(e) => return Outcome::down(e),
    };
    match tokio::net::TcpStream::connect(&addrs[..]).await {
        Ok(_) => Outcome::up(
            format!("{hostname}:{port} is open"),
            Some(elapsed_ms(started)),
        ),
        Err(e) => Outcome::down(format!("{hostname}:{port}: {e}")),
    }
}
