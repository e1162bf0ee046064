//! A real SMTP server for the email provider's tests: Python's aiosmtpd,
//! started by the test on a loopback port, plain, with STARTTLS (required)
//! or with implicit TLS, a self-signed certificate, and optionally AUTH.
//! Every message it receives is kept for the test to read.

use crate::net::free_port;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// How the server secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    StartTls,
    Tls,
}

/// A running server; killed on drop.
pub struct SmtpServer {
    pub port: u16,
    child: Child,
    got: Arc<Mutex<Vec<Value>>>,
    _dir: tempfile::TempDir,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpServer {
    /// Starts a server; with `auth`, it requires that user and password.
    pub fn start(mode: Mode, auth: Option<(&str, &str)>) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp_server.py");
        std::fs::write(&script, include_str!("smtp_server.py")).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let kp = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&cert, params.self_signed(&kp).unwrap().pem()).unwrap();
        std::fs::write(&key, kp.serialize_pem()).unwrap();
        let port = free_port();
        let mode_arg = match mode {
            Mode::Plain => "plain",
            Mode::StartTls => "starttls",
            Mode::Tls => "tls",
        };
        let (user, password) = auth.unwrap_or(("", ""));
        let mut child = Command::new("python3")
            .arg(&script)
            .args([&port.to_string(), mode_arg])
            .arg(&cert)
            .arg(&key)
            .args([user, password])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (pip install aiosmtpd)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(
            first, "READY",
            "the SMTP server did not start (is aiosmtpd installed?)"
        );
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let g = got.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    g.lock().unwrap().push(v);
                }
            }
        });
        SmtpServer {
            port,
            child,
            got,
            _dir: dir,
        }
    }

    /// Every message received so far: `{from, to, data, tls, auth}`.
    pub fn messages(&self) -> Vec<Value> {
        self.got.lock().unwrap().clone()
    }

    /// The messages once there are at least `n`: the server prints each one
    /// before it answers `250`, but the thread reading its output may not
    /// have kept it yet when the client returns.
    pub async fn received(&self, n: usize) -> Vec<Value> {
        let what = format!("{n} message(s) at the SMTP server");
        crate::wait::eventually(crate::wait::WAIT, &what, || async {
            let got = self.messages();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}
