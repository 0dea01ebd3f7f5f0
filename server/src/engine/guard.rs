//! The SSRF guard: destinations are checked against the addresses they resolve to, at the time
//! of each request, so a DNS name that later points at 127.0.0.1 or a cloud metadata address is
//! refused as surely as the literal address.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a destination was refused; found again in the request error's source chain.
#[derive(Debug, thiserror::Error)]
#[error("destination {host} resolves only to refused addresses ({addrs}); allow them with HERALD_DESTINATION_ALLOWLIST")]
pub struct Blocked {
    pub host: String,
    pub addrs: String,
}

#[derive(Clone, Debug, Default)]
pub struct Guard {
    allow: Arc<Vec<IpNet>>,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>) -> Self {
        Guard { allow: Arc::new(allow) }
    }

    /// May Herald send requests to this address?
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allow.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }

    /// For URLs whose host is an IP literal (reqwest does not resolve those).
    pub fn check_literal(&self, host: &str) -> Result<(), Blocked> {
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) if !self.permits(ip) => Err(Blocked { host: host.to_owned(), addrs: ip.to_string() }),
            _ => Ok(()),
        }
    }
}

/// An IPv6 address that carries an IPv4 address is judged as that IPv4 address: mapped
/// (`::ffff:127.0.0.1`), the deprecated IPv4-compatible form (`::127.0.0.2`, which some stacks
/// still route to IPv4), and 6to4 (`2002:7f00:0002::`, whose relay reaches the embedded address).
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0; 6] && !(v6.is_unspecified() || v6.is_loopback()) {
        return IpAddr::V4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(embedded(s[1], s[2]));
    }
    ip
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // includes the 169.254.169.254 metadata service
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || ip.is_multicast()
        || a >= 240 // reserved and broadcast
        || ip.is_documentation())
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64 can reach private IPv4
        || (first == 0x2001 && ip.segments()[1] == 0) // Teredo: tunnels to any IPv4
        || first == 0x2001 && ip.segments()[1] == 0xdb8) // documentation
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> =
                resolved.iter().copied().filter(|a| guard.permits(a.ip())).collect();
            if permitted.is_empty() && !resolved.is_empty() {
                let addrs = resolved.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ");
                return Err(Box::new(Blocked { host, addrs }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused_unless_allowed() {
        let guard = Guard::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "ff02::1",
            "::127.0.0.2",
            "::10.0.0.1",
            "::0.0.0.1",
            "2002:7f00:2::1",
            "2002:a9fe:a9fe::",
            "2001:0:4136:e378::1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!guard.permits(refused.parse().unwrap()), "{refused} must be refused");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"] {
            assert!(guard.permits(public.parse().unwrap()), "{public} must be allowed");
        }
        let guard = Guard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(guard.permits("127.0.0.1".parse().unwrap()));
        assert!(guard.permits("::ffff:127.0.0.1".parse().unwrap()), "mapped addresses match IPv4 rules");
        assert!(!guard.permits("10.0.0.1".parse().unwrap()));
        assert!(guard.check_literal("[::1]").is_err());
        assert!(Guard::default().check_literal("[::127.0.0.2]").is_err(), "IPv4-compatible literal");
        assert!(guard.check_literal("example.com").is_ok(), "names are checked when resolved");
    }
}
