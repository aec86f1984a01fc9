//! Client addresses: which proxies may say who the client is (`X-Forwarded-For`), and the
//! networks that per-address limits count by. The HTTP server's connection cap uses them too.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    base: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(base) & mask32(self.prefix)
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(base) & mask128(self.prefix)
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let base =
            addr.parse::<IpAddr>().map_err(|_| format!("{s:?} is not an address or a CIDR block"))?.to_canonical();
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0 to {max}"))?,
        };
        Ok(Self { base, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// The proxies whose `X-Forwarded-For` entries count (`TRUSTED_PROXIES`), and how many of them
/// may stand in a row (`TRUSTED_PROXY_HOPS`; 0 = as many as the header names, up to 16).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    pub nets: Vec<IpNet>,
    pub max_hops: usize,
}

/// The trusted set when only `TRUSTED_PROXY_HOPS` is given: a proxy on this host. Not the private
/// ranges: any client on a LAN, VPC or pod network could then pick its own address.
pub const LOOPBACK: [&str; 2] = ["127.0.0.0/8", "::1"];

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(ip))
    }

    /// The client of a request that reached us from `peer`: while the hop in hand is a trusted
    /// proxy, the address it saw is the next `X-Forwarded-For` entry from the right. The first
    /// untrusted hop is the client; entries left of it are whatever the client wrote.
    pub fn client_address(&self, headers: &http::HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        let peer = peer.map(|p| p.ip().to_canonical());
        let Some(mut hop) = peer.filter(|p| self.contains(*p)) else { return peer };
        let chain: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let max_hops = if self.max_hops == 0 { 16 } else { self.max_hops };
        for entry in chain.iter().rev().take(max_hops) {
            // An entry we cannot read ends the walk: the last proxy we trust is all we know.
            let Some(ip) = parse_forwarded_entry(entry) else { break };
            hop = ip;
            if !self.contains(ip) {
                break;
            }
        }
        Some(hop)
    }
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:443`.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

/// The network of `ip` that limits count by: the address itself for IPv4, the first
/// `v6_prefix` bits for IPv6 (a subscriber gets a /64 per device, a /56 or /48 per site).
/// Unknown addresses share one network.
pub fn network(ip: Option<IpAddr>, v6_prefix: u8) -> IpAddr {
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V6(v6)) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask128(v6_prefix))),
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str], max_hops: usize) -> TrustedProxies {
        TrustedProxies { nets: nets.iter().map(|n| n.parse().unwrap()).collect(), max_hops }
    }

    fn headers(xff: &[&str]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in xff {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn client(p: &TrustedProxies, peer: &str, xff: &[&str]) -> String {
        p.client_address(&headers(xff), Some(peer.parse().unwrap())).unwrap().to_string()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.1.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()), "IPv4-mapped counts as IPv4");
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!("192.0.2.7".parse::<IpNet>().unwrap().contains("192.0.2.7".parse().unwrap()));
        for bad in ["10.0.0.0/33", "example.com", "10.0.0.0/", "::/129", ""] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let p = proxies(&["10.0.0.0/8"], 0);
        let chain = ["6.6.6.6, 1.2.3.4", "10.0.0.5"];
        assert_eq!(client(&p, "10.0.0.9:4000", &chain), "1.2.3.4", "the first untrusted hop from the right");
        assert_eq!(client(&p, "203.0.113.9:4000", &chain), "203.0.113.9", "a direct client cannot pick its address");
        assert_eq!(
            client(&TrustedProxies::default(), "10.0.0.9:4000", &chain),
            "10.0.0.9",
            "no proxies: header ignored"
        );
        assert_eq!(client(&p, "10.0.0.9:4000", &["10.0.0.7"]), "10.0.0.7", "all trusted: the leftmost");
        assert_eq!(client(&p, "10.0.0.9:4000", &[]), "10.0.0.9");
        assert_eq!(client(&p, "10.0.0.9:4000", &["1.2.3.4, garbage"]), "10.0.0.9", "unreadable entry: the proxy");
    }

    #[test]
    fn a_hop_limit_stops_the_walk() {
        let p = proxies(&["10.0.0.0/8"], 1);
        assert_eq!(client(&p, "10.0.0.9:4000", &["1.2.3.4, 10.0.0.5"]), "10.0.0.5");
        let p = proxies(&["10.0.0.0/8"], 2);
        assert_eq!(client(&p, "10.0.0.9:4000", &["1.2.3.4, 10.0.0.5"]), "1.2.3.4");
    }

    #[test]
    fn entries_with_ports_parse() {
        let p = proxies(&["127.0.0.1"], 0);
        assert_eq!(client(&p, "127.0.0.1:1", &["198.51.100.4:5678"]), "198.51.100.4");
        assert_eq!(client(&p, "127.0.0.1:1", &["[2001:db8::7]:443"]), "2001:db8::7");
        assert_eq!(client(&p, "127.0.0.1:1", &["[2001:db8::8]"]), "2001:db8::8");
        assert_eq!(client(&p, "127.0.0.1:1", &["2001:db8::9"]), "2001:db8::9");
        assert_eq!(client(&p, "127.0.0.1:1", &["::ffff:198.51.100.5"]), "198.51.100.5");
    }

    #[test]
    fn networks_by_prefix() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(network(ip("2001:db8:1:2:3::1"), 64).to_string(), "2001:db8:1:2::");
        assert_eq!(network(ip("2001:db8:1:2ff::1"), 56).to_string(), "2001:db8:1:200::");
        assert_eq!(network(ip("2001:db8:1:ffff::1"), 48).to_string(), "2001:db8:1::");
        assert_eq!(network(ip("::ffff:10.1.1.1"), 64).to_string(), "10.1.1.1");
        assert_eq!(network(None, 64).to_string(), "0.0.0.0");
    }
}
