//! Where a call comes from: the TCP peer, or — when that peer is a reverse proxy the operator
//! trusts (`--trusted-proxies`) — the client address the proxy forwards in `X-Forwarded-For`.
//! What the failed sign-in counts, the per-source request limits and the read trail see, on
//! every front-end. A header from any other peer is ignored (anyone can write one).

use std::net::IpAddr;

/// The client of a call, as the front-end found it ([`crate::App::client`]), kept with the
/// request (an HTTP extension) for what reads it later (the read trail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// An address or a network (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn parse(text: &str) -> Result<Net, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("trusted proxy {text:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("trusted proxy {text:?}: prefix beyond /{max}"))?,
            None => max,
        };
        Ok(Net { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address mapped in IPv6 (`::ffff:192.0.2.7`) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The address of an `X-Forwarded-For` entry: `192.0.2.7`, `2001:db8::1`, or with a port as
/// some proxies write it (`192.0.2.7:4711`, `[2001:db8::1]:4711`).
fn address_of(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies(Vec<Net>);

impl Proxies {
    /// Comma-separated addresses and networks (`10.0.0.5, 10.42.0.0/16`); empty: none.
    pub fn parse(text: &str) -> Result<Proxies, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Net::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Proxies)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a call from `peer` carrying `forwarded_for` (the `X-Forwarded-For`
    /// values, in order): from a trusted proxy, the last address it forwards that is not
    /// itself a trusted proxy (what the client wrote at the left is not believed); else the
    /// peer.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.trusts(peer) {
            return canonical(peer);
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = canonical(peer);
        for hop in hops.iter().rev().take(32) {
            let Some(ip) = address_of(hop) else {
                // Not an address (garbage): stop here.
                break;
            };
            client = canonical(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_says_who_the_client_is() {
        let p = Proxies::parse("10.0.0.5, 10.42.0.0/16, fd00::/8").unwrap();
        // A trusted proxy: the address it appended, not what the client wrote before it.
        assert_eq!(
            p.client(ip("10.0.0.5"), ["6.6.6.6, 192.0.2.7"].into_iter()),
            ip("192.0.2.7")
        );
        // Two proxies in a row (an ingress behind a load balancer).
        assert_eq!(
            p.client(ip("10.42.3.4"), ["192.0.2.7", "10.0.0.5"].into_iter()),
            ip("192.0.2.7")
        );
        // Anyone else: the header is theirs to forge, the peer is the client.
        assert_eq!(
            p.client(ip("198.51.100.9"), ["192.0.2.7"].into_iter()),
            ip("198.51.100.9")
        );
        // A trusted proxy without the header, or with garbage: the proxy.
        assert_eq!(p.client(ip("10.0.0.5"), [].into_iter()), ip("10.0.0.5"));
        assert_eq!(
            p.client(ip("10.0.0.5"), ["unknown"].into_iter()),
            ip("10.0.0.5")
        );
        // With a port, as some proxies write it.
        assert_eq!(
            p.client(ip("10.0.0.5"), ["192.0.2.7:4711"].into_iter()),
            ip("192.0.2.7")
        );
        assert_eq!(
            p.client(ip("10.0.0.5"), ["[2001:db8::1]:4711"].into_iter()),
            ip("2001:db8::1")
        );
        assert_eq!(
            p.client(ip("::ffff:10.0.0.5"), ["192.0.2.7"].into_iter()),
            ip("192.0.2.7")
        );
        assert!(p.trusts(ip("fd12::1")) && !p.trusts(ip("fe80::1")));
        assert!(
            Proxies::default().client(ip("10.0.0.5"), ["1.2.3.4"].into_iter()) == ip("10.0.0.5")
        );
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        assert!(Proxies::parse("10.0.0.0/33").unwrap_err().contains("/32"));
        assert!(Proxies::parse("proxy.local")
            .unwrap_err()
            .contains("proxy.local"));
        assert_eq!(Proxies::parse(" ").unwrap(), Proxies::default());
        assert!(Proxies::parse("0.0.0.0/0")
            .unwrap()
            .trusts(ip("203.0.113.1")));
    }
}
