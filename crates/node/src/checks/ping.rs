//! `ping`: ICMP echo to `hostname`, `packet_count` packets, each waiting at
//! most its share of the monitor's timeout (`surge-ping`: an unprivileged
//! datagram socket where the kernel allows it, a raw socket otherwise). UP
//! when any reply arrives; the round-trip time is the average of the replies.
//! Where ICMP is not permitted the monitor is DOWN and says so.

use super::{CheckContext, Outcome};
use rand::Rng;
use std::net::IpAddr;
use std::time::Duration;
use surge_ping::{ICMP, PingIdentifier, PingSequence, SurgeError};

/// How one packet fared.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Rtt(Duration),
    Lost(String),
}

pub async fn check(hostname: &str, count: u32, timeout: Duration, ctx: &CheckContext) -> Outcome {
    let ip: IpAddr = match ctx.permitted(hostname, 0).await {
        Ok(addrs) => addrs[0].ip(),
        Err(e) => return Outcome::down(e),
    };
    let kind = if ip.is_ipv4() { ICMP::V4 } else { ICMP::V6 };
    let client = match ctx.ping_client(kind) {
        Ok(c) => c,
        Err(e) => return Outcome::down(not_permitted(&e)),
    };
    // Leave a little of the timeout for bookkeeping; at least 100 ms a packet.
    let per_packet = (timeout.mul_f64(0.9) / count.max(1)).max(Duration::from_millis(100));
    let ident = PingIdentifier(rand::rng().random());
    // On an unprivileged datagram socket the kernel replaces the identifier, so
    // replies are matched by host and sequence: a random first sequence keeps
    // two monitors pinging one host at once apart.
    let first_seq: u16 = rand::rng().random();
    let mut pinger = client.pinger(ip, ident).await;
    pinger.timeout(per_packet);
    let payload = [0u8; 56];
    let mut replies = Vec::with_capacity(count as usize);
    for seq in 0..count {
        let r = match pinger
            .ping(PingSequence(first_seq.wrapping_add(seq as u16)), &payload)
            .await
        {
            Ok((_, rtt)) => Reply::Rtt(rtt),
            Err(SurgeError::IOError(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Outcome::down(not_permitted(&e));
            }
            Err(SurgeError::Timeout { .. }) => {
                Reply::Lost(format!("no reply within {} ms", per_packet.as_millis()))
            }
            Err(e) => Reply::Lost(e.to_string()),
        };
        replies.push(r);
    }
    evaluate(hostname, &replies)
}

/// The DOWN message when the socket cannot be opened.
pub fn not_permitted(e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        "ICMP is not permitted for this process: allow unprivileged ping \
         (sysctl net.ipv4.ping_group_range) or grant CAP_NET_RAW"
            .to_owned()
    } else {
        format!("cannot open an ICMP socket: {e}")
    }
}

/// UP when any packet was answered; ping = mean round trip of the answered.
pub fn evaluate(hostname: &str, replies: &[Reply]) -> Outcome {
    let rtts: Vec<f64> = replies
        .iter()
        .filter_map(|r| match r {
            Reply::Rtt(d) => Some(d.as_secs_f64() * 1000.0),
            Reply::Lost(_) => None,
        })
        .collect();
    let sent = replies.len();
    if rtts.is_empty() {
        let why = replies
            .iter()
            .find_map(|r| match r {
                Reply::Lost(m) => Some(m.as_str()),
                Reply::Rtt(_) => None,
            })
            .unwrap_or("nothing sent");
        return Outcome::down(format!(
            "{hostname}: {sent} packets sent, none answered ({why})"
        ));
    }
    let avg = (rtts.iter().sum::<f64>() / rtts.len() as f64 * 1000.0).round() / 1000.0;
    Outcome::up(
        format!(
            "{hostname}: {}/{sent} packets answered, avg {avg:.3} ms",
            rtts.len()
        ),
        Some(avg),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_table() {
        let ms = |m: u64| Reply::Rtt(Duration::from_millis(m));
        let lost = || Reply::Lost("no reply within 100 ms".into());
        // (replies, up, ping, message contains)
        let cases: Vec<(Vec<Reply>, bool, Option<f64>, &str)> = vec![
            (vec![ms(2)], true, Some(2.0), "1/1 packets answered"),
            (
                vec![ms(2), ms(4)],
                true,
                Some(3.0),
                "2/2 packets answered, avg 3.000 ms",
            ),
            (vec![lost(), ms(4)], true, Some(4.0), "1/2"),
            (
                vec![lost(), lost()],
                false,
                None,
                "2 packets sent, none answered (no reply within 100 ms)",
            ),
        ];
        for (replies, up, ping, msg) in cases {
            let o = evaluate("h", &replies);
            assert_eq!((o.up, o.ping_ms), (up, ping), "{replies:?}");
            assert!(o.msg.contains(msg), "{}", o.msg);
        }
    }

    #[test]
    fn permission_denied_says_icmp_is_not_permitted() {
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(not_permitted(&e).contains("ICMP is not permitted"));
        let e = std::io::Error::other("boom");
        assert!(not_permitted(&e).contains("cannot open an ICMP socket: boom"));
    }
}
