//! The outgoing-HTTP policy of one function (one destination, one source, one instance of an
//! insert function): the hosts it may reach (`allowedHosts`; nothing by default), the
//! addresses it may never reach unless they are listed themselves (private, loopback,
//! link-local: checked after DNS resolution), and the bounds of every request (timeout,
//! response size, requests in flight). Pure: no I/O here, so every rule is unit-tested.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;

use serde_json::Value;

/// One `allowedHosts` entry: a host name or IP address, optionally with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// Lowercase host name, or an IP address in its canonical text.
    host: String,
    /// The only port allowed, or any port when `None`.
    port: Option<u16>,
}

impl AllowedHost {
    /// Whether a request to `host:port` matches this entry (`host` lowercase).
    fn matches(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|p| p == port)
    }

    /// Whether this entry lists the address `ip` itself (so a private address is allowed).
    fn lists_address(&self, ip: IpAddr, port: u16) -> bool {
        IpAddr::from_str(&self.host).is_ok_and(|listed| listed == canonical(ip))
            && self.port.is_none_or(|p| p == port)
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bracketed = self.host.contains(':');
        match (self.port, bracketed) {
            (Some(port), true) => write!(f, "[{}]:{port}", self.host),
            (Some(port), false) => write!(f, "{}:{port}", self.host),
            (None, _) => f.write_str(&self.host),
        }
    }
}

impl FromStr for AllowedHost {
    type Err = PolicyError;

    /// `api.example.com`, `api.example.com:8443`, `10.0.0.5`, `127.0.0.1:9000`, `[::1]:9000`,
    /// `::1`. Not a URL: no scheme, path or wildcard.
    fn from_str(entry: &str) -> Result<AllowedHost, PolicyError> {
        let bad = |why: &'static str| PolicyError::BadEntry {
            entry: entry.to_string(),
            why,
        };
        let text = entry.trim().to_ascii_lowercase();
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.contains("://") || text.contains('/') {
            return Err(bad("list a host or host:port, not a URL"));
        }
        if text.contains('*') {
            return Err(bad("wildcards are not supported; list each host"));
        }
        // An IPv6 address: bracketed with an optional port, or bare without one.
        if let Some(rest) = text.strip_prefix('[') {
            let (addr, after) = rest.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let ip = Ipv6Addr::from_str(addr).map_err(|_| bad("not an IPv6 address in `[...]`"))?;
            let port = match after {
                "" => None,
                p => Some(
                    parse_port(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?)
                        .ok_or_else(|| bad("the port must be 1-65535"))?,
                ),
            };
            return Ok(AllowedHost {
                host: canonical(IpAddr::V6(ip)).to_string(),
                port,
            });
        }
        if let Ok(ip) = IpAddr::from_str(&text) {
            return Ok(AllowedHost {
                host: canonical(ip).to_string(),
                port: None,
            });
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (
                host,
                Some(parse_port(port).ok_or_else(|| bad("the port must be 1-65535"))?),
            ),
            None => (text.as_str(), None),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            return Err(bad("not a host name"));
        }
        let host = match IpAddr::from_str(host) {
            Ok(ip) => canonical(ip).to_string(),
            Err(_) => host.trim_end_matches('.').to_string(),
        };
        Ok(AllowedHost { host, port })
    }
}

fn parse_port(text: &str) -> Option<u16> {
    text.parse::<u16>().ok().filter(|p| *p != 0)
}

/// An IPv4-mapped IPv6 address is its IPv4 address (`::ffff:127.0.0.1` is loopback).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether `ip` is an address a function must not reach unless it is listed: loopback,
/// private (RFC 1918, unique local), link-local (cloud metadata services live there),
/// carrier-grade NAT, unspecified, broadcast and multicast.
pub fn is_internal(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
}

/// Why an `allowedHosts` setting is refused (at deployment, before any request).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The setting is not a list of strings.
    #[error(
        "`allowedHosts` must be a list of strings such as [\"api.example.com\", \"10.0.0.5:8080\"]"
    )]
    NotAList,
    /// One entry is malformed.
    #[error("`allowedHosts` entry {entry:?} is invalid: {why}")]
    BadEntry {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Why the host refused or ended one outgoing request. Each has a stable name (its `code`)
/// that starts the message the function sees, e.g.
/// `http-not-allowed: host api.example.com is not in the allow-list`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpRefusal {
    /// The request's host (and port) is not in `allowedHosts`.
    #[error("http-not-allowed: host {host} is not in the allow-list (the setting allowedHosts)")]
    NotAllowed {
        /// `host` or `host:port` as requested.
        host: String,
    },
    /// Only `http` and `https` are spoken.
    #[error("http-not-allowed: scheme {scheme} is not supported; use http or https")]
    Scheme {
        /// The scheme requested.
        scheme: String,
    },
    /// The host resolved to an internal address that is not listed itself.
    #[error(
        "http-private-address: host {host} resolves to {address}, a private, loopback or link-local \
         address; list {address} in allowedHosts to allow it"
    )]
    PrivateAddress {
        /// The host requested.
        host: String,
        /// The address it resolved to.
        address: IpAddr,
    },
    /// The host name did not resolve.
    #[error("http-dns: cannot resolve {host}: {reason}")]
    Dns {
        /// The host requested.
        host: String,
        /// The resolver's reason.
        reason: String,
    },
    /// No response (or no next part of the body) within the per-request timeout.
    #[error("http-timeout: {host} did not answer within {} ms", timeout.as_millis())]
    Timeout {
        /// The host requested.
        host: String,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// The response body is larger than the cap.
    #[error("http-response-too-large: the response from {host} is over the {limit} byte cap")]
    ResponseTooLarge {
        /// The host requested.
        host: String,
        /// The cap.
        limit: usize,
    },
    /// The function already has as many requests in flight as it may.
    #[error(
        "http-too-many-requests: the function already has {limit} requests in flight, its limit"
    )]
    TooManyRequests {
        /// The cap on requests in flight.
        limit: usize,
    },
    /// Connecting or speaking HTTP failed (not a policy decision: the network's).
    #[error("http-connect: {host}: {reason}")]
    Connect {
        /// The host requested.
        host: String,
        /// What failed.
        reason: String,
    },
}

impl HttpRefusal {
    /// The stable name, as the message starts with it.
    pub fn code(&self) -> &'static str {
        match self {
            HttpRefusal::NotAllowed { .. } | HttpRefusal::Scheme { .. } => "http-not-allowed",
            HttpRefusal::PrivateAddress { .. } => "http-private-address",
            HttpRefusal::Dns { .. } => "http-dns",
            HttpRefusal::Timeout { .. } => "http-timeout",
            HttpRefusal::ResponseTooLarge { .. } => "http-response-too-large",
            HttpRefusal::TooManyRequests { .. } => "http-too-many-requests",
            HttpRefusal::Connect { .. } => "http-connect",
        }
    }
}

/// The bounds every request of a function runs under; the host's defaults, the same for
/// every function of a server (`HttpLimits::default` documents each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// From sending the request to the response's head, and between parts of its body.
    /// Default 5 s (Segment's whole-function timeout).
    pub timeout: Duration,
    /// The largest response body a function may read. Default 5 MiB.
    pub max_response_bytes: usize,
    /// Requests one function may have in flight at once, across its instances; one more is
    /// refused at once (`http-too-many-requests`) rather than queued, so that a flood costs
    /// the host nothing. Default 100.
    pub max_in_flight: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            timeout: Duration::from_secs(5),
            max_response_bytes: 5 << 20,
            max_in_flight: 100,
        }
    }
}

/// A function's whole policy: its allow-list and the host's limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpPolicy {
    allowed: Vec<AllowedHost>,
    /// The bounds of each request.
    pub limits: HttpLimits,
}

impl HttpPolicy {
    /// A policy allowing exactly `entries` (each `host` or `host:port`).
    ///
    /// # Errors
    /// The first malformed entry.
    pub fn new<S: AsRef<str>>(
        entries: &[S],
        limits: HttpLimits,
    ) -> Result<HttpPolicy, PolicyError> {
        let allowed = entries
            .iter()
            .map(|e| AllowedHost::from_str(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(HttpPolicy { allowed, limits })
    }

    /// The policy a function's settings ask for: their `allowedHosts` (absent: nothing is
    /// reachable), under `limits`.
    ///
    /// # Errors
    /// `allowedHosts` is not a list of strings, or an entry is malformed.
    pub fn from_settings(settings: &Value, limits: HttpLimits) -> Result<HttpPolicy, PolicyError> {
        let Some(list) = settings.get("allowedHosts") else {
            return Ok(HttpPolicy {
                allowed: Vec::new(),
                limits,
            });
        };
        let entries = list
            .as_array()
            .ok_or(PolicyError::NotAList)?
            .iter()
            .map(|v| v.as_str().ok_or(PolicyError::NotAList))
            .collect::<Result<Vec<_>, _>>()?;
        HttpPolicy::new(&entries, limits)
    }

    /// The allow-list, as given (normalised).
    pub fn allowed(&self) -> &[AllowedHost] {
        &self.allowed
    }

    /// Checks a request's target before anything is resolved or sent.
    ///
    /// # Errors
    /// [`HttpRefusal::Scheme`] or [`HttpRefusal::NotAllowed`].
    pub fn check_target(&self, scheme: &str, host: &str, port: u16) -> Result<(), HttpRefusal> {
        if scheme != "http" && scheme != "https" {
            return Err(HttpRefusal::Scheme {
                scheme: scheme.to_string(),
            });
        }
        let host = normalise_host(host);
        if self.allowed.iter().any(|a| a.matches(&host, port)) {
            return Ok(());
        }
        Err(HttpRefusal::NotAllowed {
            host: format!("{host}:{port}"),
        })
    }

    /// Checks the addresses `host` resolved to: an internal address is refused unless it is
    /// listed itself. Every address must pass, so a name cannot smuggle one in beside a
    /// public one.
    ///
    /// # Errors
    /// [`HttpRefusal::PrivateAddress`] naming the first refused address.
    pub fn check_addresses(
        &self,
        host: &str,
        port: u16,
        addresses: &[IpAddr],
    ) -> Result<(), HttpRefusal> {
        for &address in addresses {
            if is_internal(address) && !self.allowed.iter().any(|a| a.lists_address(address, port))
            {
                return Err(HttpRefusal::PrivateAddress {
                    host: normalise_host(host),
                    address: canonical(address),
                });
            }
        }
        Ok(())
    }
}

/// A request's host as the allow-list spells it: lowercase, without IPv6 brackets or a
/// trailing dot, IP addresses canonical.
fn normalise_host(host: &str) -> String {
    let lower = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    match IpAddr::from_str(&lower) {
        Ok(ip) => canonical(ip).to_string(),
        Err(_) => lower.trim_end_matches('.').to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> HttpPolicy {
        HttpPolicy::new(entries, HttpLimits::default()).unwrap()
    }

    #[test]
    fn entries_parse_and_malformed_ones_are_named() {
        let p = policy(&[
            "API.example.com",
            "hooks.example.com:8443",
            "[::1]:9000",
            "10.0.0.5",
        ]);
        let shown: Vec<String> = p.allowed().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "api.example.com",
                "hooks.example.com:8443",
                "[::1]:9000",
                "10.0.0.5"
            ]
        );
        for bad in [
            "https://api.example.com",
            "api.example.com/path",
            "*.example.com",
            "",
            "h:0",
            "h:99999",
            "a b",
        ] {
            assert!(
                matches!(
                    AllowedHost::from_str(bad),
                    Err(PolicyError::BadEntry { .. })
                ),
                "{bad:?}"
            );
        }
        let settings = serde_json::json!({"allowedHosts": "api.example.com"});
        assert_eq!(
            HttpPolicy::from_settings(&settings, HttpLimits::default()),
            Err(PolicyError::NotAList)
        );
    }

    #[test]
    fn nothing_is_reachable_by_default() {
        let p = HttpPolicy::from_settings(&serde_json::json!({}), HttpLimits::default()).unwrap();
        let err = p.check_target("https", "api.example.com", 443).unwrap_err();
        assert_eq!(err.code(), "http-not-allowed");
        assert_eq!(
            err.to_string(),
            "http-not-allowed: host api.example.com:443 is not in the allow-list (the setting allowedHosts)"
        );
    }

    #[test]
    fn hosts_and_ports_must_match() {
        let p = policy(&["api.example.com", "hooks.example.com:8443"]);
        assert!(p.check_target("https", "API.Example.com.", 443).is_ok());
        assert!(p.check_target("http", "api.example.com", 8080).is_ok());
        assert!(p.check_target("https", "hooks.example.com", 8443).is_ok());
        assert!(p.check_target("https", "hooks.example.com", 443).is_err());
        assert!(p.check_target("https", "evil.example.com", 443).is_err());
        assert!(
            p.check_target("https", "api.example.com.evil.net", 443)
                .is_err()
        );
        assert_eq!(
            p.check_target("ftp", "api.example.com", 21)
                .unwrap_err()
                .code(),
            "http-not-allowed"
        );
    }

    #[test]
    fn internal_addresses_need_listing_themselves() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let p = policy(&["localhost:8080", "api.example.com"]);
        assert!(p.check_target("http", "localhost", 8080).is_ok());
        let err = p
            .check_addresses("localhost", 8080, &[loopback])
            .unwrap_err();
        assert_eq!(err.code(), "http-private-address");
        assert!(p.check_addresses("api.example.com", 443, &[public]).is_ok());
        // A name resolving to a public and a private address is refused.
        assert!(
            p.check_addresses("api.example.com", 443, &[public, loopback])
                .is_err()
        );
        let listed = policy(&["localhost:8080", "127.0.0.1:8080"]);
        assert!(
            listed
                .check_addresses("localhost", 8080, &[loopback])
                .is_ok()
        );
        assert!(
            listed
                .check_addresses("localhost", 9090, &[loopback])
                .is_err()
        );
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(
            policy(&["x.test"])
                .check_addresses("x.test", 80, &[mapped])
                .is_err()
        );
    }

    #[test]
    fn internal_ranges() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }
}
