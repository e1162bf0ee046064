//! The database's TCP connections run with `TCP_NODELAY`. sqlx 0.9.0 stopped
//! setting it (transact-rs/sqlx#4335) and `vendor/sqlx-core` restores it;
//! without it a small MariaDB round trip can stall ~40 ms on Nagle's algorithm
//! meeting the server's delayed ACK. Linux: the sockets are found in
//! `/proc/self/fd`.

use picket_testkit::db;
use std::os::fd::{BorrowedFd, RawFd};

/// `TCP_NODELAY` of every TCP socket of this process connected to `port`.
/// Descriptors listed in `/proc` can only be borrowed unsafely.
#[allow(unsafe_code)]
fn nodelay_of_sockets_to(port: u16) -> Vec<bool> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let Some(fd) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<RawFd>().ok())
        else {
            continue;
        };
        // SAFETY: the descriptor is only queried, never closed; if another
        // thread closes it meanwhile, the query fails and it is skipped.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        let Some(peer) = sock.peer_addr().ok().and_then(|a| a.as_socket()) else {
            continue;
        };
        if peer.port() == port
            && let Ok(on) = sock.tcp_nodelay()
        {
            out.push(on);
        }
    }
    out
}

#[tokio::test]
async fn mariadb_connections_disable_nagle() {
    let Some(t) = db::mysql().await else {
        return;
    };
    t.db.ping().await.unwrap();
    let port = url::Url::parse(&t.url).unwrap().port().unwrap_or(3306);
    let sockets = nodelay_of_sockets_to(port);
    assert!(!sockets.is_empty(), "no connection to port {port} found");
    assert!(
        sockets.iter().all(|on| *on),
        "TCP_NODELAY off on some database connections: {sockets:?}"
    );
}
