//! Which URLs and addresses a webhook may be delivered to (server-side request forgery guard).
//!
//! A webhook URL is chosen by a user, but the request leaves from inside the registry's network,
//! so an unchecked URL could reach loopback services, the cloud metadata endpoint
//! (169.254.169.254) or private hosts. Unless an endpoint is configured with
//! `allow_private = true`, Bonded refuses such targets.
//!
//! `allow_private = true` (an internal CI server, a receiver on the same host) lifts every rule
//! below except one: the cloud metadata service (169.254.169.254, and AWS's IPv6
//! fd00:ec2::254) stays refused, because no webhook receiver lives there and it is the usual
//! prize of a server-side request forgery (instance credentials).
//!
//! The check has two halves, because a host name can resolve to a public address when the
//! endpoint is saved and to a private one when it is called (DNS rebinding):
//! 1. [`TargetUrl::parse`] checks the URL itself when the endpoint is saved and again before each
//!    attempt: `https` is required (plain `http` only with `allow_private`), credentials in the
//!    URL are refused, and a literal IP address or a `localhost` name is checked right away.
//! 2. [`permitted_addresses`] checks the addresses the host name resolved to *at delivery time*.
//!    The caller must connect only to an address this function returned (pin it in the HTTP
//!    client's resolver, e.g. reqwest's `resolve_to_addrs` or a custom `dns::Resolve`) and must
//!    not follow redirects, so the address that was checked is the address that is used.
//!
//! Address rules (IANA special-purpose registries; RFC 1918, 6598, 3927, 4193, 4291, 6052, 3056):
//! loopback, unspecified, RFC 1918 private, shared CGNAT space 100.64.0.0/10, link-local
//! (169.254.0.0/16, fe80::/10) with the metadata address named separately, unique-local
//! fc00::/7, multicast, broadcast, documentation, benchmarking and reserved ranges are refused.
//! IPv6 forms that embed an IPv4 address — IPv4-mapped `::ffff:a.b.c.d`, the NAT64 well-known
//! prefix 64:ff9b::/96 and 6to4 2002::/16 — are judged by the embedded IPv4 address, because a
//! translator or relay would deliver the request to it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Why a target URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("webhook URL is not a valid absolute URL: {source}")]
    Syntax { source: url::ParseError },
    #[error("webhook URL scheme `{scheme}` is not allowed (use https{hint})")]
    Scheme { scheme: String, hint: &'static str },
    #[error("webhook URL must not carry a user name or password")]
    Credentials,
    #[error("webhook URL has no host")]
    MissingHost,
    #[error("webhook host `{host}` names the local machine")]
    LocalName { host: String },
    #[error("webhook address {address} is refused ({class})")]
    ForbiddenAddress {
        address: IpAddr,
        class: AddressClass,
    },
    #[error("the webhook host resolved to no address")]
    NoAddresses,
}

/// Why an address is not a public unicast destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16) and other non-global local-use prefixes.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    SharedCgnat,
    /// 169.254.0.0/16 or fe80::/10.
    LinkLocal,
    /// 169.254.169.254 (and fd00:ec2::254), the instance metadata service of the major clouds;
    /// refused even with `allow_private`.
    CloudMetadata,
    /// fc00::/7 (RFC 4193).
    UniqueLocal,
    Multicast,
    Broadcast,
    /// Documentation and benchmarking ranges.
    Documentation,
    /// Reserved, deprecated or special-purpose ranges that are never a webhook receiver.
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Unspecified => "unspecified address",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private network",
            AddressClass::SharedCgnat => "shared carrier-grade NAT space",
            AddressClass::LinkLocal => "link-local",
            AddressClass::CloudMetadata => "cloud metadata service",
            AddressClass::UniqueLocal => "unique-local IPv6",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Documentation => "documentation or benchmarking range",
            AddressClass::Reserved => "reserved range",
        })
    }
}

/// The metadata address, more specific than the link-local range that contains it.
const CLOUD_METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// IPv4 prefixes that are not public unicast destinations, most specific first.
const IPV4_RULES: [(Ipv4Addr, u8, AddressClass); 17] = [
    (CLOUD_METADATA, 32, AddressClass::CloudMetadata),
    (
        Ipv4Addr::new(255, 255, 255, 255),
        32,
        AddressClass::Broadcast,
    ),
    (Ipv4Addr::new(0, 0, 0, 0), 8, AddressClass::Unspecified),
    (Ipv4Addr::new(10, 0, 0, 0), 8, AddressClass::Private),
    (Ipv4Addr::new(100, 64, 0, 0), 10, AddressClass::SharedCgnat),
    (Ipv4Addr::new(127, 0, 0, 0), 8, AddressClass::Loopback),
    (Ipv4Addr::new(169, 254, 0, 0), 16, AddressClass::LinkLocal),
    (Ipv4Addr::new(172, 16, 0, 0), 12, AddressClass::Private),
    // IETF protocol assignments (includes DS-Lite and NAT64 discovery addresses).
    (Ipv4Addr::new(192, 0, 0, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(192, 0, 2, 0), 24, AddressClass::Documentation),
    // Deprecated 6to4 relay anycast (RFC 7526).
    (Ipv4Addr::new(192, 88, 99, 0), 24, AddressClass::Reserved),
    (Ipv4Addr::new(192, 168, 0, 0), 16, AddressClass::Private),
    (
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        AddressClass::Documentation,
    ),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        AddressClass::Documentation,
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        AddressClass::Documentation,
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, AddressClass::Multicast),
    (Ipv4Addr::new(240, 0, 0, 0), 4, AddressClass::Reserved),
];

/// IPv6 prefixes that are not public unicast destinations (embedded-IPv4 forms are handled
/// before this table is consulted).
const IPV6_RULES: [(Ipv6Addr, u8, AddressClass); 13] = [
    (Ipv6Addr::UNSPECIFIED, 128, AddressClass::Unspecified),
    // AWS instance metadata over IPv6, inside fc00::/7.
    (
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        128,
        AddressClass::CloudMetadata,
    ),
    (Ipv6Addr::LOCALHOST, 128, AddressClass::Loopback),
    // Deprecated IPv4-compatible addresses ::a.b.c.d (RFC 4291 §2.5.5.1).
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        96,
        AddressClass::Reserved,
    ),
    // Local-use NAT64 prefix (RFC 8215).
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        AddressClass::Private,
    ),
    // Discard-only prefix (RFC 6666).
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        AddressClass::Reserved,
    ),
    // Teredo (RFC 4380): tunnels to an obfuscated IPv4 address.
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        AddressClass::Reserved,
    ),
    // Benchmarking (RFC 5180) and documentation (RFC 3849).
    (
        Ipv6Addr::new(0x2001, 0x2, 0, 0, 0, 0, 0, 0),
        48,
        AddressClass::Documentation,
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        AddressClass::Documentation,
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        AddressClass::UniqueLocal,
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        AddressClass::LinkLocal,
    ),
    // Deprecated site-local (RFC 3879).
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        AddressClass::Private,
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        AddressClass::Multicast,
    ),
];

/// A webhook URL that passed [`TargetUrl::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: Url,
    allow_private: bool,
}

impl TargetUrl {
    /// Parses and checks a webhook URL under the endpoint's `allow_private` setting.
    pub fn parse(text: &str, allow_private: bool) -> Result<Self, TargetError> {
        let url = Url::parse(text).map_err(|source| TargetError::Syntax { source })?;
        match (url.scheme(), allow_private) {
            ("https", _) | ("http", true) => {}
            (scheme, _) => {
                return Err(TargetError::Scheme {
                    scheme: scheme.to_owned(),
                    hint: if scheme == "http" {
                        ", or set allow_private for an internal http receiver"
                    } else {
                        ""
                    },
                });
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        check_host(url.host().ok_or(TargetError::MissingHost)?, allow_private)?;
        Ok(Self { url, allow_private })
    }

    /// The checked URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether private destinations were allowed for this endpoint.
    pub fn allow_private(&self) -> bool {
        self.allow_private
    }

    /// The addresses of this target's host that a delivery may connect to
    /// (see [`permitted_addresses`]).
    pub fn permitted_addresses(&self, resolved: &[IpAddr]) -> Result<Vec<IpAddr>, TargetError> {
        permitted_addresses(resolved, self.allow_private)
    }
}

/// Checks the addresses a host name resolved to at delivery time and returns those the
/// delivery may connect to.
///
/// The whole answer is refused if any address is refused: a name that mixes public and private
/// addresses is the usual shape of a rebinding attack, and trying only the public ones would
/// hide the misconfiguration. With `allow_private` only the metadata service is refused.
pub fn permitted_addresses(
    resolved: &[IpAddr],
    allow_private: bool,
) -> Result<Vec<IpAddr>, TargetError> {
    if resolved.is_empty() {
        return Err(TargetError::NoAddresses);
    }
    for address in resolved {
        check_address(*address, allow_private)?;
    }
    Ok(resolved.to_vec())
}

fn check_address(address: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    match classify(address) {
        Some(class) if !allow_private || class == AddressClass::CloudMetadata => {
            Err(TargetError::ForbiddenAddress { address, class })
        }
        _ => Ok(()),
    }
}

/// Why `address` is not a public unicast destination, or `None` if it is one.
pub fn classify(address: IpAddr) -> Option<AddressClass> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Option<AddressClass> {
    let bits = u32::from(address);
    IPV4_RULES
        .iter()
        .find(|(network, length, _)| prefix_matches_v4(bits, u32::from(*network), *length))
        .map(|(_, _, class)| *class)
}

fn classify_v6(address: Ipv6Addr) -> Option<AddressClass> {
    if let Some(embedded) = embedded_ipv4(address) {
        return classify_v4(embedded);
    }
    let bits = u128::from(address);
    IPV6_RULES
        .iter()
        .find(|(network, length, _)| prefix_matches_v6(bits, u128::from(*network), *length))
        .map(|(_, _, class)| *class)
}

/// The IPv4 address a packet to `address` ends up at, for the forms that embed one:
/// IPv4-mapped (::ffff:0:0/96), NAT64 well-known prefix (64:ff9b::/96, RFC 6052) and
/// 6to4 (2002::/16, RFC 3056, address in bits 16..48).
fn embedded_ipv4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(address);
    let low_32 = Ipv4Addr::from(bits as u32);
    let mapped = u128::from(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0));
    let nat64 = u128::from(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0));
    let six_to_four = u128::from(Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0));
    if prefix_matches_v6(bits, mapped, 96) || prefix_matches_v6(bits, nat64, 96) {
        Some(low_32)
    } else if prefix_matches_v6(bits, six_to_four, 16) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

fn prefix_matches_v4(bits: u32, network: u32, length: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
    bits & mask == network & mask
}

fn prefix_matches_v6(bits: u128, network: u128, length: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
    bits & mask == network & mask
}

fn check_host(host: Host<&str>, allow_private: bool) -> Result<(), TargetError> {
    let address = match host {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(name) => {
            // RFC 6761 §6.3: `localhost` and its subdomains resolve to loopback.
            let name = name.trim_end_matches('.');
            if !allow_private && (name == "localhost" || name.ends_with(".localhost")) {
                return Err(TargetError::LocalName {
                    host: name.to_owned(),
                });
            }
            return Ok(());
        }
    };
    check_address(address, allow_private)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn classifies_special_purpose_addresses() {
        let cases = [
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.255.255.254", AddressClass::Loopback),
            ("10.0.0.1", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("100.100.100.200", AddressClass::SharedCgnat),
            ("100.127.255.255", AddressClass::SharedCgnat),
            ("169.254.0.1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::CloudMetadata),
            ("224.0.0.251", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.0.8", AddressClass::Reserved),
            ("192.0.2.10", AddressClass::Documentation),
            ("198.18.0.1", AddressClass::Documentation),
            ("203.0.113.7", AddressClass::Documentation),
            ("::", AddressClass::Unspecified),
            ("::1", AddressClass::Loopback),
            ("fe80::1", AddressClass::LinkLocal),
            ("febf::1", AddressClass::LinkLocal),
            ("fc00::1", AddressClass::UniqueLocal),
            ("fd00:ec2::254", AddressClass::CloudMetadata),
            ("fd00:ec2::253", AddressClass::UniqueLocal),
            ("fec0::1", AddressClass::Private),
            ("ff02::1", AddressClass::Multicast),
            ("2001:db8::1", AddressClass::Documentation),
            ("2001::1", AddressClass::Reserved),
            ("::7f00:1", AddressClass::Reserved),
            ("64:ff9b:1::a00:1", AddressClass::Private),
            // Embedded IPv4 addresses are judged by the IPv4 address.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::CloudMetadata),
            ("::ffff:10.1.2.3", AddressClass::Private),
            ("64:ff9b::7f00:1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::CloudMetadata),
            ("2002:c0a8:0101::1", AddressClass::Private),
            ("2002:7f00:0001::", AddressClass::Loopback),
        ];
        for (text, class) in cases {
            assert_eq!(classify(ip(text)), Some(class), "{text}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.255.255",
            "192.0.3.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(classify(ip(text)), None, "{text}");
        }
    }

    #[test]
    fn https_is_required_unless_private_targets_are_allowed() {
        assert!(TargetUrl::parse("https://hooks.example.com/bonded", false).is_ok());
        assert!(matches!(
            TargetUrl::parse("http://hooks.example.com/bonded", false),
            Err(TargetError::Scheme { .. })
        ));
        assert!(TargetUrl::parse("http://hooks.example.com/bonded", true).is_ok());
        for scheme in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            assert!(
                matches!(
                    TargetUrl::parse(scheme, true),
                    Err(TargetError::Scheme { .. })
                ),
                "{scheme}"
            );
        }
        assert!(matches!(
            TargetUrl::parse("not a url", false),
            Err(TargetError::Syntax { .. })
        ));
    }

    #[test]
    fn credentials_in_the_url_are_refused() {
        for text in ["https://user@example.com/", "https://user:pw@example.com/"] {
            assert_eq!(TargetUrl::parse(text, true), Err(TargetError::Credentials));
        }
    }

    #[test]
    fn literal_private_hosts_are_refused_early() {
        let cases = [
            ("https://127.0.0.1/", AddressClass::Loopback),
            ("https://[::1]:8443/", AddressClass::Loopback),
            ("https://[::ffff:7f00:1]/", AddressClass::Loopback),
            ("https://10.0.0.5/", AddressClass::Private),
            // Shorthand IPv4 forms are normalized by the URL parser before the check.
            ("https://2130706433/", AddressClass::Loopback),
            ("https://0x7f.1/", AddressClass::Loopback),
            ("https://0/", AddressClass::Unspecified),
        ];
        for (text, class) in cases {
            match TargetUrl::parse(text, false) {
                Err(TargetError::ForbiddenAddress { class: seen, .. }) => {
                    assert_eq!(seen, class, "{text}");
                }
                other => panic!("{text} gave {other:?}"),
            }
            assert!(TargetUrl::parse(text, true).is_ok(), "{text}");
        }
        for text in [
            "https://localhost/",
            "https://api.localhost./",
            "https://LOCALHOST:8080/",
        ] {
            assert!(
                matches!(
                    TargetUrl::parse(text, false),
                    Err(TargetError::LocalName { .. })
                ),
                "{text}"
            );
            assert!(TargetUrl::parse(text, true).is_ok(), "{text}");
        }
    }

    #[test]
    fn the_metadata_service_is_refused_even_with_allow_private() {
        for text in [
            "https://169.254.169.254/latest/meta-data/",
            "https://169.254.169.254/computeMetadata/v1/",
            "https://[::ffff:a9fe:a9fe]/",
            "https://[fd00:ec2::254]/latest/api/token",
        ] {
            for allow_private in [false, true] {
                assert!(
                    matches!(
                        TargetUrl::parse(text, allow_private),
                        Err(TargetError::ForbiddenAddress {
                            class: AddressClass::CloudMetadata,
                            ..
                        })
                    ),
                    "{text} allow_private={allow_private}"
                );
            }
        }
        let internal = TargetUrl::parse("http://ci.internal/", true).unwrap();
        assert_eq!(
            internal.permitted_addresses(&[ip("10.0.0.7"), ip("169.254.169.254")]),
            Err(TargetError::ForbiddenAddress {
                address: ip("169.254.169.254"),
                class: AddressClass::CloudMetadata
            })
        );
    }

    #[test]
    fn resolved_addresses_are_checked_at_delivery_time() {
        let target = TargetUrl::parse("https://hooks.example.com/", false).unwrap();
        let public = [
            ip("93.184.215.14"),
            ip("2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
        ];
        assert_eq!(target.permitted_addresses(&public), Ok(public.to_vec()));

        // A rebinding answer that mixes a public and a private address is refused entirely.
        let rebinding = [ip("93.184.215.14"), ip("127.0.0.1")];
        assert_eq!(
            target.permitted_addresses(&rebinding),
            Err(TargetError::ForbiddenAddress {
                address: ip("127.0.0.1"),
                class: AddressClass::Loopback
            })
        );
        assert_eq!(
            target.permitted_addresses(&[]),
            Err(TargetError::NoAddresses)
        );

        let internal = TargetUrl::parse("http://ci.internal:8080/", true).unwrap();
        assert_eq!(
            internal.permitted_addresses(&rebinding),
            Ok(rebinding.to_vec())
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in ".{0,80}", allow in proptest::bool::ANY) {
            let _ = TargetUrl::parse(&text, allow);
        }

        #[test]
        fn classification_matches_std_where_std_is_stable(bits in proptest::num::u32::ANY) {
            let v4 = Ipv4Addr::from(bits);
            let std_says_special = v4.is_private() || v4.is_loopback() || v4.is_link_local()
                || v4.is_multicast() || v4.is_broadcast() || v4.is_documentation()
                || v4.is_unspecified();
            if std_says_special {
                proptest::prop_assert!(classify(IpAddr::V4(v4)).is_some(), "{}", v4);
            }
            let mapped = v4.to_ipv6_mapped();
            proptest::prop_assert_eq!(classify(IpAddr::V6(mapped)), classify(IpAddr::V4(v4)));
        }
    }
}
