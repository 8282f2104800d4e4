//! The resolver of a container on a user-defined network, at 127.0.0.11 inside its
//! namespace as docker's embedded DNS is. It runs in the container's own monitor, which
//! lives exactly as long as the container: no shared daemon has to stay up, and no
//! container's lookups depend on another container's process. Peers' names (name, short
//! id, aliases) are answered from the store; anything else is forwarded from the host's
//! namespace to the host's resolvers (loopback ones included, which the container itself
//! could not reach) or to `--dns`.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use simple_dns::rdata::{RData, A};
use simple_dns::{Packet, PacketFlag, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

use super::netns;
use crate::store::OnDemand;

/// Where the container's resolv.conf points.
pub const ADDRESS: &str = "127.0.0.11";

/// Answers older than this are dropped from the forwarding table.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Resolver {
    inner: UdpSocket,
    upstream: UdpSocket,
    servers: Vec<SocketAddr>,
    /// Our id of a forwarded query -> the client, its id, when it was sent.
    pending: HashMap<u16, (SocketAddr, u16, Instant)>,
    next_id: u16,
    root: PathBuf,
    id: String,
    db: OnDemand,
}

impl Resolver {
    /// Binds 127.0.0.11:53 inside the namespace at `netns` and a forwarding socket in
    /// ours; `servers` are the upstream resolvers.
    pub fn bind(netns: &Path, root: &Path, id: &str, servers: &[String]) -> io::Result<Self> {
        let inner = netns::enter(netns, || UdpSocket::bind((ADDRESS, 53)))?;
        inner.set_nonblocking(true)?;
        let upstream = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        upstream.set_nonblocking(true)?;
        Ok(Self {
            inner,
            upstream,
            servers: servers
                .iter()
                .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
                .map(|ip| SocketAddr::new(ip, 53))
                .collect(),
            pending: HashMap::new(),
            next_id: 1,
            root: root.to_path_buf(),
            id: id.to_string(),
            // Not on the start's path: connected by the first query that needs a name.
            db: OnDemand::later(&root.join("wharf.db")),
        })
    }

    /// Lets go of the store while the container's network is quiet (`store::OnDemand`).
    pub fn idle(&mut self) {
        self.db.close();
    }

    /// The sockets to poll: queries, then forwarded answers.
    pub fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.inner.as_fd(), self.upstream.as_fd()]
    }

    /// Serves every query waiting on the inner socket.
    pub fn on_queries(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = self.inner.recv_from(&mut buf) {
            if let Some(reply) = self.answer(&buf[..n], from) {
                let _ = self.inner.send_to(&reply, from);
            }
        }
    }

    /// Relays every answer waiting on the forwarding socket to its client.
    pub fn on_answers(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok((n, _)) = self.upstream.recv_from(&mut buf) {
            if n < 2 {
                continue;
            }
            let ours = u16::from_be_bytes([buf[0], buf[1]]);
            if let Some((client, their_id, _)) = self.pending.remove(&ours) {
                buf[..2].copy_from_slice(&their_id.to_be_bytes());
                let _ = self.inner.send_to(&buf[..n], client);
            }
        }
        self.pending
            .retain(|_, (_, _, sent)| sent.elapsed() < FORWARD_TIMEOUT);
    }

    /// The reply to one query, or None when it was forwarded (or is not a query).
    fn answer(&mut self, query: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
        let q = Packet::parse(query).ok()?;
        if q.has_flags(PacketFlag::RESPONSE) {
            return None;
        }
        let question = q.questions.first()?;
        let name = question.qname.to_string();
        let peer = self
            .db
            .get()
            .ok()
            .and_then(|db| super::resolve_peer(&self.root, db, &self.id, &name).ok())
            .flatten();
        let mut reply = Packet::new_reply(q.id());
        reply.set_flags(PacketFlag::RECURSION_AVAILABLE);
        if q.has_flags(PacketFlag::RECURSION_DESIRED) {
            reply.set_flags(PacketFlag::RECURSION_DESIRED);
        }
        reply.questions.push(question.clone());
        match peer {
            Some(addr) => {
                if question.qtype == QTYPE::TYPE(TYPE::A) {
                    reply.answers.push(ResourceRecord::new(
                        question.qname.clone(),
                        CLASS::IN,
                        600,
                        RData::A(A::from(addr)),
                    ));
                }
            }
            None => {
                if self.forward(query, q.id(), from) {
                    return None;
                }
                *reply.rcode_mut() = RCODE::ServerFailure;
            }
        }
        reply.build_bytes_vec_compressed().ok()
    }

    /// Sends `query` upstream under an id of ours; false when no resolver takes it.
    fn forward(&mut self, query: &[u8], their_id: u16, client: SocketAddr) -> bool {
        let ours = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let mut q = query.to_vec();
        q[..2].copy_from_slice(&ours.to_be_bytes());
        let sent = self
            .servers
            .iter()
            .any(|s| self.upstream.send_to(&q, s).is_ok());
        if sent {
            self.pending
                .insert(ours, (client, their_id, Instant::now()));
        }
        sent
    }
}
