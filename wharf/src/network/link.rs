//! Links, addresses and routes over rtnetlink: the bridge of a network, a container's veth
//! pair (its inner end made directly inside the container's namespace), and the inner
//! addresses and default route. One synchronous socket per namespace; every request waits
//! for the kernel's acknowledgement.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::Ipv4Net;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A route socket of one network namespace.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl Netlink {
    /// A socket in the caller's namespace (see `netns::enter` for another one's).
    pub fn open() -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self { socket, seq: 0 })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(self.seq)
    }

    /// Reads the answers to request `seq` until its ack or end of dump, handing each
    /// message to `each`.
    fn receive(&mut self, seq: u32, mut each: impl FnMut(RouteNetlinkMessage)) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = self.socket.recv(&mut &mut buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                off += len.max(1);
                if msg.header.sequence_number != seq {
                    continue;
                }
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(()),
                    NetlinkPayload::Error(e) => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(m) => each(m),
                    _ => {}
                }
            }
        }
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let seq = self.send(msg, NLM_F_ACK | flags)?;
        self.receive(seq, |_| {})
    }

    fn dump(&mut self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.receive(seq, |m| out.push(m))?;
        Ok(out)
    }

    /// The index of link `name`, None when there is none.
    pub fn index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        // With an ack requested the kernel ends its one answer with an ack, as for changes.
        let seq = self.send(RouteNetlinkMessage::GetLink(m), NLM_F_ACK)?;
        let mut index = None;
        match self.receive(seq, |m| {
            if let RouteNetlinkMessage::NewLink(l) = m {
                index = Some(l.header.index);
            }
        }) {
            Ok(()) => Ok(index),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The index of link `name`; a missing link is ENODEV.
    pub fn require_index(&mut self, name: &str) -> io::Result<u32> {
        self.index(name)?
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Makes bridge `name` unless it exists; returns its index.
    pub fn ensure_bridge(&mut self, name: &str) -> io::Result<u32> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        match self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
            _ => {}
        }
        self.require_index(name)
    }

    /// Makes a veth pair: `host` here, attached to bridge `controller`, and `inner` with
    /// address `mac` inside the namespace open as `netns`. Both ends start down.
    pub fn add_veth(
        &mut self,
        host: &str,
        controller: u32,
        inner: &str,
        mac: [u8; 6],
        netns: std::os::fd::RawFd,
    ) -> io::Result<()> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(inner.to_string()));
        peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        peer.attributes.push(LinkAttribute::NetNsFd(netns));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.push(LinkAttribute::Controller(controller));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Brings link `index` up.
    pub fn up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0)
    }

    /// Deletes link `name`; a missing one is not an error.
    pub fn delete(&mut self, name: &str) -> io::Result<()> {
        let Some(index) = self.index(name)? else {
            return Ok(());
        };
        let mut m = LinkMessage::default();
        m.header.index = index;
        match self.request(RouteNetlinkMessage::DelLink(m), 0) {
            Err(e) if e.raw_os_error() != Some(libc::ENODEV) => Err(e),
            _ => Ok(()),
        }
    }

    /// Gives link `index` the address `net` (address and prefix); an address it already
    /// has is kept.
    pub fn add_address(&mut self, index: u32, net: Ipv4Net) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = net.prefix_len();
        m.header.index = index;
        let addr = IpAddr::V4(net.addr());
        m.attributes.push(AddressAttribute::Local(addr));
        m.attributes.push(AddressAttribute::Address(addr));
        m.attributes
            .push(AddressAttribute::Broadcast(net.broadcast()));
        match self.request(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => Err(e),
            _ => Ok(()),
        }
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.table = libc::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Static;
        m.header.scope = RouteScope::Universe;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        self.request(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Every IPv4 destination the host routes or owns (all tables, local addresses
    /// included), for choosing a subnet that collides with none.
    pub fn ipv4_destinations(&mut self) -> io::Result<Vec<Ipv4Net>> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        let mut out = Vec::new();
        for msg in self.dump(RouteNetlinkMessage::GetRoute(m))? {
            let RouteNetlinkMessage::NewRoute(r) = msg else {
                continue;
            };
            let prefix = r.header.destination_prefix_length;
            let dest = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(*a),
                _ => None,
            });
            // A default route (no destination) covers everything and excludes nothing.
            if let Some(dest) = dest {
                if let Ok(net) = Ipv4Net::new(dest, prefix) {
                    out.push(net.trunc());
                }
            }
        }
        Ok(out)
    }
}
