//! The `picket-lb` binary as an operator runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lb() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_picket-lb"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn bad_configuration_exits_64_before_binding() {
    let port = picket_testkit::net::free_port();
    let out = lb()
        .env("PICKET_LB_LISTEN", format!("127.0.0.1:{port}"))
        .env("PICKET_DNS_SERVERS", "not-an-ip")
        .env("PICKET_LB_GRACE_PERIOD_SECS", "60")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PICKET_DNS_SERVERS"), "{err}");
    assert!(err.contains("GRACE_PERIOD"), "{err}");
    // Nothing was bound.
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();

    let out = lb().env("PICKET_HC_FALL", "many").output().unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let t = picket_testkit::db::sqlite().await;
    let port = picket_testkit::net::free_port();
    let mut child = lb()
        .env("DATABASE_URL", &t.url)
        .env("PICKET_LB_LISTEN", format!("127.0.0.1:{port}"))
        .env("PICKET_LB_GRACE_PERIOD_SECS", "1")
        .env("PICKET_LB_THREADS", "1")
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/lb/ping");
    picket_testkit::eventually(picket_testkit::WAIT, "the binary answers", || async {
        picket_testkit::net::client()
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    // Generous deadline: the point is that it exits by itself, with 0.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("picket-lb did not exit after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
