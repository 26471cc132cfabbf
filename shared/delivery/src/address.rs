//! Which IP addresses a webhook may be sent to: only those anyone on the internet can reach,
//! never our own network, the host itself or a cloud metadata service.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges that are not globally routable or have a special purpose (IANA's IPv4
/// Special-Purpose Address Registry, RFC 6890, plus multicast and the reserved class E).
const NON_PUBLIC_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network" (RFC 791)
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata at 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments (RFC 6890)
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated, RFC 7526)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking (RFC 2544)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and 255.255.255.255 broadcast
];

/// IPv6 global unicast (RFC 4291 section 2.4): everything outside it is refused, which covers
/// `::`, `::1`, the deprecated IPv4-compatible `::/96`, discard-only `100::/64`, unique local
/// `fc00::/7` (AWS's metadata service at `fd00:ec2::254`), link-local `fe80::/10`, the old
/// site-local `fec0::/10`, multicast `ff00::/8`, local-use NAT64 `64:ff9b:1::/48` and every
/// block IANA has not allocated. The forms that carry an IPv4 address are judged before this.
const GLOBAL_UNICAST_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Special-purpose blocks inside global unicast.
const NON_PUBLIC_V6: &[(Ipv6Addr, u8)] = &[
    // IETF protocol assignments (RFC 2928): Teredo, benchmarking, ORCHID, AMT and the like.
    // A few of them are routable, but none is where a customer's webhook endpoint lives, so
    // the whole block is refused rather than a list kept in step with IANA's registry.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0), 32), // documentation (RFC 3849)
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),      // documentation (RFC 9637)
];

/// The NAT64 well-known prefix (RFC 6052): the last 32 bits are the IPv4 address a translator
/// connects to.
const NAT64_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// 6to4 (RFC 3056): bits 16 to 47 are the IPv4 address of the relay's far end.
const SIX_TO_FOUR_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);

/// Whether a webhook may be sent to `ip`: true only for a globally routable unicast address.
/// False for private, loopback, link-local (so cloud metadata services), carrier-grade NAT,
/// documentation, benchmarking, multicast, broadcast and reserved ranges of either family. An
/// IPv6 address that stands for an IPv4 one (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`) is judged by that IPv4 address, since that is where the packets end up.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !NON_PUBLIC_V4
        .iter()
        .any(|&(network, length)| in_v4(ip, network, length))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(ip) = embedded_v4(ip) {
        return is_public_v4(ip);
    }
    let (global, global_length) = GLOBAL_UNICAST_V6;
    in_v6(ip, global, global_length)
        && !NON_PUBLIC_V6
            .iter()
            .any(|&(network, length)| in_v6(ip, network, length))
}

/// The IPv4 address an IPv6 address stands for, in the forms that carry one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    let bits = ip.to_bits();
    let (nat64, nat64_length) = NAT64_V6;
    if in_v6(ip, nat64, nat64_length) {
        // Truncation keeps the low 32 bits, the embedded address.
        return Some(Ipv4Addr::from_bits(bits as u32));
    }
    let (six_to_four, six_to_four_length) = SIX_TO_FOUR_V6;
    if in_v6(ip, six_to_four, six_to_four_length) {
        return Some(Ipv4Addr::from_bits((bits >> 80) as u32));
    }
    None
}

fn in_v4(ip: Ipv4Addr, network: Ipv4Addr, length: u8) -> bool {
    let host_bits = 32 - u32::from(length);
    ip.to_bits().checked_shr(host_bits).unwrap_or(0)
        == network.to_bits().checked_shr(host_bits).unwrap_or(0)
}

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, length: u8) -> bool {
    let host_bits = 128 - u32::from(length);
    ip.to_bits().checked_shr(host_bits).unwrap_or(0)
        == network.to_bits().checked_shr(host_bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, bool)]) {
        for &(address, public) in cases {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(is_public(ip), public, "{address}");
        }
    }

    #[test]
    fn ipv4_special_ranges_are_not_public() {
        check(&[
            ("0.0.0.0", false),
            ("0.255.255.255", false),
            ("10.0.0.1", false),
            ("10.255.255.255", false),
            ("100.64.0.0", false),
            ("100.127.255.255", false),
            ("127.0.0.1", false),
            ("127.255.255.254", false),
            ("169.254.0.1", false),
            ("169.254.169.254", false),
            ("172.16.0.0", false),
            ("172.31.255.255", false),
            ("192.0.0.1", false),
            ("192.0.2.55", false),
            ("192.88.99.1", false),
            ("192.168.1.1", false),
            ("198.18.0.1", false),
            ("198.19.255.255", false),
            ("198.51.100.7", false),
            ("203.0.113.9", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("240.0.0.1", false),
            ("255.255.255.255", false),
        ]);
    }

    #[test]
    fn ipv4_public_addresses_and_range_edges_are_public() {
        check(&[
            ("1.1.1.1", true),
            ("8.8.8.8", true),
            ("9.255.255.255", true),
            ("11.0.0.0", true),
            ("100.63.255.255", true),
            ("100.128.0.0", true),
            ("126.255.255.255", true),
            ("128.0.0.0", true),
            ("169.253.255.255", true),
            ("169.255.0.0", true),
            ("172.15.255.255", true),
            ("172.32.0.0", true),
            ("192.0.1.0", true),
            ("192.0.3.0", true),
            ("192.167.255.255", true),
            ("192.169.0.0", true),
            ("198.17.255.255", true),
            ("198.20.0.0", true),
            ("223.255.255.255", true),
        ]);
    }

    #[test]
    fn ipv6_special_ranges_are_not_public() {
        check(&[
            ("::", false),                 // unspecified
            ("::1", false),                // loopback
            ("::7f00:1", false),           // IPv4-compatible 127.0.0.1
            ("::808:808", false),          // IPv4-compatible, whatever it embeds
            ("100::1", false),             // discard-only
            ("fc00::1", false),            // unique local
            ("fd00:ec2::254", false),      // AWS metadata
            ("fe80::1", false),            // link-local
            ("febf:ffff::1", false),       // link-local, last of the block
            ("fec0::1", false),            // site-local
            ("ff02::1", false),            // multicast
            ("2001::1", false),            // Teredo
            ("2001:2::1", false),          // benchmarking
            ("2001:1ff:ffff::1", false),   // IETF assignments, last of the block
            ("2001:db8::1", false),        // documentation
            ("3fff::1", false),            // documentation
            ("64:ff9b:1::808:808", false), // local-use NAT64
            ("4000::1", false),            // not global unicast
        ]);
    }

    #[test]
    fn ipv6_public_addresses_are_public() {
        check(&[
            ("2606:4700:4700::1111", true),
            ("2a00:1450:4001:80b::200e", true),
            ("2001:200::1", true),
            ("2001:db7:ffff::1", true),
            ("2001:db9::1", true),
            ("3ffe:ffff::1", true),
        ]);
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_by_it() {
        check(&[
            ("::ffff:8.8.8.8", true),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b::10.1.2.3", false),
            ("64:ff9b::169.254.169.254", false),
            ("2002:808:808::1", true),
            ("2002:a00:1::1", false),
            ("2002:7f00:1::", false),
        ]);
    }
}
