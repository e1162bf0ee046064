//! A minimal authoritative DNS server for the balancer's resolver tests.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A minimal authoritative DNS responder on a loopback UDP port: answers A
/// queries for the names in its table with TTL 600 (as Docker's embedded DNS
/// does), NXDOMAIN for other names, and an empty answer for other types.
pub struct DnsServer {
    pub addr: SocketAddr,
    pub table: Arc<Mutex<Vec<(String, Ipv4Addr)>>>,
    pub queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    pub fn set(&self, name: &str, ip: Ipv4Addr) {
        let mut t = self.table.lock().unwrap();
        t.retain(|(n, _)| n != name);
        t.push((name.to_owned(), ip));
    }
}

pub async fn dns_server() -> DnsServer {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let table: Arc<Mutex<Vec<(String, Ipv4Addr)>>> = Arc::default();
    let queries = Arc::new(AtomicUsize::new(0));
    let (t, q) = (table.clone(), queries.clone());
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            q.fetch_add(1, Ordering::SeqCst);
            let resp = dns_answer(&buf[..n], &t.lock().unwrap());
            if let Some(resp) = resp {
                let _ = sock.send_to(&resp, peer).await;
            }
        }
    });
    DnsServer {
        addr,
        table,
        queries,
        task,
    }
}

/// Builds the response to one query (RFC 1035 wire format, one question).
fn dns_answer(q: &[u8], table: &[(String, Ipv4Addr)]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    // Question: labels until the zero byte, then QTYPE and QCLASS.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + len)?).to_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let question_end = i + 4;
    let name = labels.join(".");
    let found = table.iter().find(|(n, _)| *n == name).map(|(_, ip)| *ip);
    let mut r = Vec::with_capacity(64);
    r.extend_from_slice(&q[0..2]); // id
    let rcode = if found.is_some() { 0 } else { 3 }; // NOERROR / NXDOMAIN
    r.push(0x84 | (q[2] & 0x01)); // QR, AA, RD copied
    r.push(rcode);
    r.extend_from_slice(&[0, 1]); // QDCOUNT
    let answer = found.filter(|_| qtype == 1);
    r.extend_from_slice(&[0, u8::from(answer.is_some())]); // ANCOUNT
    r.extend_from_slice(&[0, 0, 0, 0]); // NSCOUNT, ARCOUNT
    r.extend_from_slice(q.get(12..question_end)?);
    if let Some(ip) = answer {
        r.extend_from_slice(&[0xc0, 12]); // name: pointer to the question
        r.extend_from_slice(&[0, 1, 0, 1]); // A, IN
        r.extend_from_slice(&600u32.to_be_bytes()); // TTL 600, like Docker
        r.extend_from_slice(&[0, 4]);
        r.extend_from_slice(&ip.octets());
    }
    Some(r)
}
