//! Address management: the subnet of a new network (docker's pools, skipping every subnet
//! the host routes or owns and every subnet another network has), and a container's
//! address and MAC within its network. Pure functions; the store makes picking atomic.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// docker's default address pools in its order: 172.17-31.0.0/16, then 192.168.0.0/16
/// cut into /20s.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let big = (17..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("/16"));
    let small = (0..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("/20"));
    big.chain(small)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The first pool that overlaps nothing in `taken`.
pub fn choose_subnet(taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    default_pools().find(|p| !taken.iter().any(|t| overlaps(p, t)))
}

/// Whether `subnet` overlaps one of `taken`, and which.
pub fn conflict(subnet: &Ipv4Net, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    taken.iter().find(|t| overlaps(subnet, t)).copied()
}

/// The gateway docker gives a subnet: its first host address.
pub fn default_gateway(subnet: &Ipv4Net) -> Ipv4Addr {
    subnet.hosts().next().unwrap_or(subnet.addr())
}

/// The lowest address of `range` (within `subnet`) that is neither the gateway, the
/// subnet's network or broadcast address, nor in `taken`.
pub fn pick_address(
    subnet: &Ipv4Net,
    range: &Ipv4Net,
    gateway: Ipv4Addr,
    taken: &HashSet<String>,
) -> Option<Ipv4Addr> {
    range.hosts().find(|a| {
        *a != gateway
            && *a != subnet.network()
            && *a != subnet.broadcast()
            && subnet.contains(a)
            && !taken.contains(&a.to_string())
    })
}

/// docker's MAC for an address: 02:42 followed by the four address bytes, so a MAC never
/// outlives or collides across its address.
pub fn mac_of(a: Ipv4Addr) -> [u8; 6] {
    let o = a.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (docker refuses anything else, and a multicast address).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| {
            (p.len() == 2)
                .then(|| u8::from_str_radix(p, 16).ok())
                .flatten()
        })
        .collect::<Option<_>>()?;
    let m: [u8; 6] = parts.try_into().ok()?;
    (m[0] & 1 == 0).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_skip_what_the_host_routes() {
        assert_eq!(choose_subnet(&[]), Some(net("172.17.0.0/16")));
        let taken = [
            net("172.17.0.0/16"),
            net("172.18.5.0/24"),
            net("10.0.0.0/8"),
        ];
        assert_eq!(choose_subnet(&taken), Some(net("172.19.0.0/16")));
        // A wide host route (172.16.0.0/12) rules out every 172 pool.
        assert_eq!(
            choose_subnet(&[net("172.16.0.0/12")]),
            Some(net("192.168.0.0/20"))
        );
        assert_eq!(
            conflict(&net("172.18.0.0/16"), &taken),
            Some(net("172.18.5.0/24"))
        );
    }

    #[test]
    fn addresses_skip_gateway_and_taken_ones() {
        let s = net("10.9.0.0/24");
        let gw = default_gateway(&s);
        assert_eq!(gw, Ipv4Addr::new(10, 9, 0, 1));
        let mut taken = HashSet::new();
        assert_eq!(
            pick_address(&s, &s, gw, &taken),
            Some(Ipv4Addr::new(10, 9, 0, 2))
        );
        taken.insert("10.9.0.2".to_string());
        assert_eq!(
            pick_address(&s, &s, gw, &taken),
            Some(Ipv4Addr::new(10, 9, 0, 3))
        );
        let range = net("10.9.0.128/25");
        assert_eq!(
            pick_address(&s, &range, gw, &taken),
            Some(Ipv4Addr::new(10, 9, 0, 129))
        );
        let tiny = net("10.9.0.0/30");
        taken.insert("10.9.0.2".to_string());
        assert_eq!(
            pick_address(&tiny, &tiny, default_gateway(&tiny), &taken),
            None
        );
    }

    #[test]
    fn macs_follow_docker() {
        let m = mac_of(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(mac_text(m), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(m));
        assert_eq!(parse_mac("01:42:ac:11:00:02"), None);
        assert_eq!(parse_mac("02:42:ac:11:00"), None);
        assert_eq!(parse_mac("02:42:ac:11:00:zz"), None);
    }
}
