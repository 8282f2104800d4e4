//! Metadata in an embedded SQLite database: images, their names (tags and repo digests)
//! and layers. Every multi-row change is one transaction, the database runs in WAL mode
//! with a busy timeout, so concurrent wharf processes and a kill at any point leave either
//! the old or the new state. The schema is versioned with `user_version` so later
//! migrations can add containers, volumes and networks.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::image::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("metadata database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("metadata database holds an invalid digest: {0}")]
    Corrupt(String),
    #[error("network with name {0} already exists")]
    NetworkExists(String),
    #[error("locking {0}: {1}")]
    Lock(String, String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
}

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    created TEXT,
    size INTEGER NOT NULL,
    added TEXT NOT NULL
);
CREATE TABLE layers (
    chain_id TEXT PRIMARY KEY,
    diff_id TEXT NOT NULL,
    parent TEXT REFERENCES layers(chain_id),
    size INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    chain_id TEXT NOT NULL REFERENCES layers(chain_id),
    blob TEXT NOT NULL,
    blob_size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged TEXT NOT NULL
);
CREATE TABLE repo_digests (
    name TEXT NOT NULL,
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, image_id)
);
CREATE INDEX tags_by_image ON tags(image_id);
CREATE INDEX layers_by_image ON image_layers(chain_id);
"#,
    r#"
CREATE TABLE containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX containers_by_image ON containers(image_id);
"#,
    r#"
CREATE TABLE volumes (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    labels TEXT NOT NULL,
    anonymous INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE removed_exits (
    id TEXT PRIMARY KEY,
    code INTEGER NOT NULL,
    removed TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE networks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,
    bridge TEXT UNIQUE,
    subnet TEXT NOT NULL,
    gateway TEXT NOT NULL,
    ip_range TEXT NOT NULL,
    internal INTEGER NOT NULL,
    labels TEXT NOT NULL,
    options TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE endpoints (
    network_id TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL,
    address TEXT NOT NULL,
    mac TEXT NOT NULL,
    aliases TEXT NOT NULL,
    PRIMARY KEY (network_id, container_id),
    UNIQUE (network_id, address)
);
CREATE INDEX endpoints_by_container ON endpoints(container_id);
"#,
    r#"
CREATE TABLE build_cache (
    key TEXT PRIMARY KEY,
    image_id TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX build_cache_by_image ON build_cache(image_id);
"#,
    r#"
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano INTEGER NOT NULL,
    type TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    attributes TEXT NOT NULL
);
"#,
];

/// One recorded event, as `events` reads it back.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub seq: i64,
    pub time_nano: i64,
    pub kind: String,
    pub action: String,
    pub actor: String,
    /// JSON object of string attributes.
    pub attributes: String,
}

/// How many events the log keeps (docker's daemon keeps 256 in memory). With the exit
/// codes below, a stream of `run --rm` (four events each) reaches a steady file size
/// within a few hundred runs.
const EVENTS_KEPT: i64 = 1024;

/// How many exit codes of removed `--rm` containers are kept for `wait`: a waiter asks
/// within moments of the removal.
const EXITS_KEPT: i64 = 256;

/// Appends events (inside the caller's transaction when it has one, so that a state change
/// and its event commit together: one fsync, not two), dropping the oldest beyond what the
/// log keeps.
fn append_events(conn: &Connection, events: &[EventRow]) -> Result<(), StoreError> {
    for e in events {
        // Writers are serialised: an event stamped before another process's but committed
        // after it takes that one's time, so times never go backwards in the journal's order.
        conn.execute(
            "INSERT INTO events (time_nano, type, action, actor, attributes) VALUES \
             (MAX(?1, COALESCE((SELECT time_nano FROM events ORDER BY seq DESC LIMIT 1), 0)), \
             ?2, ?3, ?4, ?5)",
            params![e.time_nano, e.kind, e.action, e.actor, e.attributes],
        )?;
        let seq = conn.last_insert_rowid();
        if seq % 256 == 0 {
            conn.execute("DELETE FROM events WHERE seq <= ?1", [seq - EVENTS_KEPT])?;
        }
    }
    Ok(())
}

/// The columns of a container that change after create.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    State,
    Spec,
}

/// One container as recorded: what `create` decided (`spec`) and what the monitor and the
/// lifecycle commands last saw (`state`), both JSON owned by the container module.
#[derive(Debug, Clone)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub created: String,
    pub spec: String,
    pub state: String,
}

/// One image as recorded.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub created: Option<String>,
    pub size: u64,
    pub added: String,
    /// Full names, e.g. `docker.io/library/alpine:latest`.
    pub tags: Vec<String>,
    /// Full names with digest, e.g. `docker.io/library/alpine@sha256:...`.
    pub repo_digests: Vec<String>,
    /// When a tag last moved to this image.
    pub last_tag_time: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LayerRow {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in the unpacked layer.
    pub size: u64,
    pub blob: Digest,
    pub blob_size: u64,
    pub media_type: String,
}

/// Everything needed to record a new image in one transaction.
#[derive(Debug, Clone)]
pub struct NewImage {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub created: Option<String>,
    pub layers: Vec<LayerRow>,
    pub tags: Vec<String>,
    pub repo_digests: Vec<String>,
}

pub struct Db {
    conn: Connection,
}

fn digest(s: String) -> Result<Digest, StoreError> {
    Digest::parse(&s).map_err(|_| StoreError::Corrupt(s))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The store for a process that lives long and uses it seldom (a container's monitor, its
/// DNS resolver): connected on use, and disconnected by `close` while the process idles, so
/// that SQLite's memory (the parsed schema, lookaside buffers, page cache, statements) is
/// not held for the container's lifetime by each of its monitors.
pub struct OnDemand {
    path: PathBuf,
    db: Option<Db>,
}

impl OnDemand {
    /// Connects at once, so that a store that cannot be opened is an error here.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            path: path.to_path_buf(),
            db: Some(Db::open(path)?),
        })
    }

    /// Connects on first use, to a store another connection of this process has opened.
    pub fn later(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            db: None,
        }
    }

    pub fn get(&mut self) -> Result<&mut Db, StoreError> {
        match &mut self.db {
            Some(db) => Ok(db),
            // Set up by `open` already: no setup lock and no migrations, so that a monitor
            // connecting again from its poll loop never waits on another command's.
            db => Ok(db.insert(Db {
                conn: connect(&self.path)?,
            })),
        }
    }

    pub fn close(&mut self) {
        self.db = None;
    }
}

/// A connection with the settings each connection needs (WAL mode is the file's own).
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // Two processes making a new database at once can meet inside SQLite's switch to WAL,
        // which reports "database is locked" without waiting: setting up is one at a time.
        let lock_path = path.with_extension("db.lock");
        let lock_file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Lock(lock_path.display().to_string(), e.to_string()))?;
        let _setup = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| StoreError::Lock(lock_path.display().to_string(), e.to_string()))?;
        let mut conn = connect(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A database already at the newest version needs no write transaction (whose
        // commit would cost every command an fsync).
        let current: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if current >= MIGRATIONS.len() {
            return Ok(Self { conn });
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", i + 1)?;
        }
        tx.commit()?;
        Ok(Self { conn })
    }

    /// Records `img` (or refreshes its names when it exists) and moves its tags to it.
    /// Returns true when the image was new.
    pub fn add_image(&mut self, img: &NewImage) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx
            .query_row(
                "SELECT 1 FROM images WHERE id = ?1",
                [img.id.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        if !exists {
            tx.execute(
                "INSERT INTO images (id, manifest_digest, manifest_media_type, created, size, added)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    img.id.as_str(),
                    img.manifest_digest.as_str(),
                    img.manifest_media_type,
                    img.created,
                    size,
                    now()
                ],
            )?;
            for (pos, l) in img.layers.iter().enumerate() {
                tx.execute(
                    "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        l.chain_id.as_str(),
                        l.diff_id.as_str(),
                        l.parent.as_ref().map(Digest::as_str),
                        l.size
                    ],
                )?;
                tx.execute(
                    "INSERT INTO image_layers (image_id, position, chain_id, blob, blob_size, media_type)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        img.id.as_str(),
                        pos,
                        l.chain_id.as_str(),
                        l.blob.as_str(),
                        l.blob_size,
                        l.media_type
                    ],
                )?;
            }
        }
        for t in &img.tags {
            set_tag(&tx, t, &img.id)?;
        }
        for d in &img.repo_digests {
            tx.execute(
                "INSERT OR IGNORE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
                params![d, img.id.as_str()],
            )?;
        }
        tx.commit()?;
        Ok(!exists)
    }

    pub fn add_repo_digest(&mut self, name: &str, id: &Digest) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO repo_digests (name, image_id) VALUES (?1, ?2)",
            params![name, id.as_str()],
        )?;
        Ok(())
    }

    pub fn tag(&mut self, name: &str, id: &Digest) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        set_tag(&tx, name, id)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes one tag; returns the image it pointed to.
    pub fn untag(&mut self, name: &str) -> Result<Option<Digest>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: Option<String> = tx
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        tx.execute("DELETE FROM tags WHERE name = ?1", [name])?;
        tx.commit()?;
        id.map(digest).transpose()
    }

    /// Deletes the image and its names; layers stay until `unused_layers` finds them.
    pub fn remove_image(&mut self, id: &Digest) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
        tx.execute(
            "DELETE FROM layers WHERE chain_id NOT IN (SELECT chain_id FROM image_layers)
             AND chain_id NOT IN (SELECT parent FROM layers WHERE parent IS NOT NULL)",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn images(&self) -> Result<Vec<ImageRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, manifest_digest, manifest_media_type, created, size, added FROM images
             ORDER BY COALESCE(created, added) DESC, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, u64>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, md, mt, created, size, added) = row?;
            let id = digest(id)?;
            let (tags, last_tag_time) = self.names("tags", &id)?;
            let (repo_digests, _) = self.names("repo_digests", &id)?;
            out.push(ImageRow {
                id,
                manifest_digest: digest(md)?,
                manifest_media_type: mt,
                created,
                size,
                added,
                tags,
                repo_digests,
                last_tag_time,
            });
        }
        Ok(out)
    }

    fn names(&self, table: &str, id: &Digest) -> Result<(Vec<String>, Option<String>), StoreError> {
        let time = if table == "tags" { "tagged" } else { "NULL" };
        let mut stmt = self.conn.prepare(&format!(
            "SELECT name, {time} FROM {table} WHERE image_id = ?1 ORDER BY name"
        ))?;
        let mut names = Vec::new();
        let mut last: Option<String> = None;
        for row in stmt.query_map([id.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })? {
            let (n, t) = row?;
            if t > last {
                last = t;
            }
            names.push(n);
        }
        Ok((names, last))
    }

    pub fn image(&self, id: &Digest) -> Result<Option<ImageRow>, StoreError> {
        Ok(self.images()?.into_iter().find(|i| &i.id == id))
    }

    pub fn tag_target(&self, name: &str) -> Result<Option<Digest>, StoreError> {
        self.conn
            .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?
            .map(digest)
            .transpose()
    }

    /// Images whose id starts with `prefix` (hex, without `sha256:`).
    pub fn ids_with_prefix(&self, prefix: &str) -> Result<Vec<Digest>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM images WHERE substr(id, 8, ?2) = ?1")?;
        let rows = stmt.query_map(params![prefix, prefix.len()], |r| r.get::<_, String>(0))?;
        rows.map(|r| digest(r?)).collect()
    }

    pub fn layers(&self, id: &Digest) -> Result<Vec<LayerRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT l.chain_id, l.diff_id, l.parent, l.size, il.blob, il.blob_size, il.media_type
             FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
             WHERE il.image_id = ?1 ORDER BY il.position",
        )?;
        let rows = stmt.query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, u64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, u64>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (c, d, p, size, blob, blob_size, media_type) = row?;
            out.push(LayerRow {
                chain_id: digest(c)?,
                diff_id: digest(d)?,
                parent: p.map(digest).transpose()?,
                size,
                blob: digest(blob)?,
                blob_size,
                media_type,
            });
        }
        Ok(out)
    }

    pub fn layer_size(&self, chain_id: &Digest) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT size FROM layers WHERE chain_id = ?1",
                [chain_id.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Blobs any image needs: manifests, configs and layers.
    pub fn referenced_blobs(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT manifest_digest FROM images UNION SELECT id FROM images
             UNION SELECT blob FROM image_layers",
        )?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| digest(r?)).collect()
    }

    pub fn referenced_layers(&self) -> Result<HashSet<Digest>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT chain_id FROM layers")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| digest(r?)).collect()
    }
}

const CONTAINER_COLUMNS: &str = "id, name, image_id, created, spec, state";

fn container_row(r: &rusqlite::Row) -> rusqlite::Result<ContainerRow> {
    Ok(ContainerRow {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: r.get(2)?,
        created: r.get(3)?,
        spec: r.get(4)?,
        state: r.get(5)?,
    })
}

/// Containers: names are unique, checked in the same transaction as the insert or rename.
impl Db {
    pub fn add_container(
        &mut self,
        c: &ContainerRow,
        events: &[EventRow],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        name_free(&tx, &c.name)?;
        tx.execute(
            &format!(
                "INSERT INTO containers ({CONTAINER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            params![c.id, c.name, c.image_id, c.created, c.spec, c.state],
        )?;
        append_events(&tx, events)?;
        tx.commit()?;
        Ok(())
    }

    /// All containers, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CONTAINER_COLUMNS} FROM containers ORDER BY created DESC, id"
        ))?;
        let rows = stmt.query_map([], container_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn container(&self, id: &str) -> Result<Option<ContainerRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE id = ?1"),
                [id],
                container_row,
            )
            .optional()?)
    }

    pub fn container_by_name(&self, name: &str) -> Result<Option<ContainerRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE name = ?1"),
                [name],
                container_row,
            )
            .optional()?)
    }

    pub fn container_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM containers WHERE substr(id, 1, ?2) = ?1")?;
        let rows = stmt.query_map(params![prefix, prefix.len()], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Rewrites a container's state or spec with `f`, appending `events`, in one
    /// transaction, so the monitor and a lifecycle command never lose each other's
    /// fields. `f` returning None changes nothing and records no event. Returns the new
    /// text, or None when the container is gone or `f` declined.
    pub fn update_container(
        &mut self,
        id: &str,
        field: Field,
        f: &mut dyn FnMut(&str) -> Option<String>,
        events: &[EventRow],
    ) -> Result<Option<String>, StoreError> {
        let column = match field {
            Field::State => "state",
            Field::Spec => "spec",
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cur: Option<String> = tx
            .query_row(
                &format!("SELECT {column} FROM containers WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(new) = cur.and_then(|cur| f(&cur)) else {
            return Ok(None);
        };
        tx.execute(
            &format!("UPDATE containers SET {column} = ?2 WHERE id = ?1"),
            params![id, new],
        )?;
        append_events(&tx, events)?;
        tx.commit()?;
        Ok(Some(new))
    }

    pub fn rename_container(&mut self, id: &str, name: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        name_free(&tx, name)?;
        tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn remove_container(&mut self, id: &str, events: &[EventRow]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        append_events(&tx, events)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes an auto-removed (`--rm`) container and keeps its exit code for a while, for
    /// a `wait` that finds the record gone. Codes older than an hour are dropped, and all
    /// but the newest `EXITS_KEPT`, so a long stream of `run --rm` keeps the file's size flat.
    pub fn remove_exited_container(
        &mut self,
        id: &str,
        code: i32,
        events: &[EventRow],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let cutoff = (chrono::Utc::now() - chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        tx.execute(
            "DELETE FROM removed_exits WHERE removed < ?1 OR rowid <= \
             (SELECT MAX(rowid) FROM removed_exits) - ?2",
            params![cutoff, EXITS_KEPT],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO removed_exits (id, code, removed) VALUES (?1, ?2, ?3)",
            params![id, code, now()],
        )?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])?;
        append_events(&tx, events)?;
        tx.commit()?;
        Ok(())
    }

    /// Appends an event, dropping the oldest beyond what the log keeps.
    pub fn add_event(&self, e: &EventRow) -> Result<(), StoreError> {
        append_events(&self.conn, std::slice::from_ref(e))
    }

    /// Events after `seq` with a time from `since_nano`, oldest first.
    pub fn events_after(&self, seq: i64, since_nano: i64) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, time_nano, type, action, actor, attributes FROM events \
             WHERE seq > ?1 AND time_nano >= ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(rusqlite::params![seq, since_nano], |r| {
            Ok(EventRow {
                seq: r.get(0)?,
                time_nano: r.get(1)?,
                kind: r.get(2)?,
                action: r.get(3)?,
                actor: r.get(4)?,
                attributes: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest event's sequence number (0 with none).
    pub fn last_event(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?)
    }

    /// The exit code of a container `remove_exited_container` removed.
    pub fn removed_exit(&self, id: &str) -> Result<Option<i32>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT code FROM removed_exits WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Containers created from `image_id`, as (id, state JSON).
    pub fn containers_of_image(&self, image_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, state FROM containers WHERE image_id = ?1 ORDER BY created")?;
        let rows = stmt.query_map([image_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// One volume as recorded; its data lives in `volumes/<name>/_data` under the data root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    pub name: String,
    pub created: String,
    /// A JSON object of labels.
    pub labels: String,
    /// Made for a container (`-v /path`, an image's VOLUME), not by name.
    pub anonymous: bool,
}

fn volume_row(r: &rusqlite::Row) -> rusqlite::Result<VolumeRow> {
    Ok(VolumeRow {
        name: r.get(0)?,
        created: r.get(1)?,
        labels: r.get(2)?,
        anonymous: r.get(3)?,
    })
}

/// Volumes: a name is recorded once; a second add of the same name keeps the first.
impl Db {
    /// Records `v` unless a volume of that name exists; returns the recorded one and
    /// whether it is new.
    pub fn add_volume(&mut self, v: &VolumeRow) -> Result<(VolumeRow, bool), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO volumes (name, created, labels, anonymous) VALUES (?1, ?2, ?3, ?4)",
            params![v.name, v.created, v.labels, v.anonymous],
        )? == 1;
        let row = tx.query_row(
            "SELECT name, created, labels, anonymous FROM volumes WHERE name = ?1",
            [&v.name],
            volume_row,
        )?;
        tx.commit()?;
        Ok((row, added))
    }

    pub fn volume(&self, name: &str) -> Result<Option<VolumeRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, created, labels, anonymous FROM volumes WHERE name = ?1",
                [name],
                volume_row,
            )
            .optional()?)
    }

    /// All volumes by name.
    pub fn volumes(&self) -> Result<Vec<VolumeRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, created, labels, anonymous FROM volumes ORDER BY name")?;
        let rows = stmt.query_map([], volume_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn remove_volume(&mut self, name: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        Ok(())
    }
}

/// One network as recorded. `bridge` is the host device of a bridge network (None for
/// `host` and `none`); subnet, gateway and range are in CIDR or address text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRow {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub bridge: Option<String>,
    pub subnet: String,
    pub gateway: String,
    pub ip_range: String,
    pub internal: bool,
    /// JSON objects.
    pub labels: String,
    pub options: String,
    pub created: String,
}

/// A container's place on a network: its address (without prefix), MAC and aliases (a
/// JSON array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRow {
    pub network_id: String,
    pub container_id: String,
    pub address: String,
    pub mac: String,
    pub aliases: String,
}

const NETWORK_COLUMNS: &str =
    "id, name, driver, bridge, subnet, gateway, ip_range, internal, labels, options, created";

fn network_row(r: &rusqlite::Row) -> rusqlite::Result<NetworkRow> {
    Ok(NetworkRow {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        bridge: r.get(3)?,
        subnet: r.get(4)?,
        gateway: r.get(5)?,
        ip_range: r.get(6)?,
        internal: r.get(7)?,
        labels: r.get(8)?,
        options: r.get(9)?,
        created: r.get(10)?,
    })
}

fn endpoint_row(r: &rusqlite::Row) -> rusqlite::Result<EndpointRow> {
    Ok(EndpointRow {
        network_id: r.get(0)?,
        container_id: r.get(1)?,
        address: r.get(2)?,
        mac: r.get(3)?,
        aliases: r.get(4)?,
    })
}

/// Networks and their endpoints. Addresses are handed out inside one immediate
/// transaction, so concurrent `run`s never get the same one (the UNIQUE constraint
/// backs that up).
impl Db {
    /// Records `n`; a name already taken is refused.
    pub fn add_network(&mut self, n: &NetworkRow) -> Result<(), StoreError> {
        let added = self.conn.execute(
            &format!(
                "INSERT OR IGNORE INTO networks ({NETWORK_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                n.id, n.name, n.driver, n.bridge, n.subnet, n.gateway, n.ip_range, n.internal,
                n.labels, n.options, n.created
            ],
        )?;
        if added == 0 {
            return Err(StoreError::NetworkExists(n.name.clone()));
        }
        Ok(())
    }

    /// All networks, oldest first.
    pub fn networks(&self) -> Result<Vec<NetworkRow>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {NETWORK_COLUMNS} FROM networks ORDER BY created, name"
        ))?;
        let rows = stmt.query_map([], network_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes the network unless an endpoint still uses it; false when one does.
    pub fn remove_network(&mut self, id: &str) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let used: bool = tx
            .query_row(
                "SELECT 1 FROM endpoints WHERE network_id = ?1 LIMIT 1",
                [id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !used {
            tx.execute("DELETE FROM networks WHERE id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(!used)
    }

    /// Moves network `id` to `subnet` and `gateway`, and its endpoints (in joining order)
    /// to the addresses and MACs `renumber` gives them, in one transaction, so that no
    /// endpoint joins meanwhile with an address of the old subnet. None from `renumber`
    /// (the new subnet is too small) changes nothing and returns false.
    pub fn renumber_network(
        &mut self,
        id: &str,
        subnet: &str,
        gateway: &str,
        renumber: impl FnOnce(&[EndpointRow]) -> Option<Vec<(String, String)>>,
    ) -> Result<bool, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let endpoints: Vec<EndpointRow> = {
            let mut stmt = tx.prepare(
                "SELECT network_id, container_id, address, mac, aliases FROM endpoints
                 WHERE network_id = ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([id], endpoint_row)?;
            rows.collect::<Result<_, _>>()?
        };
        let Some(new) = renumber(&endpoints) else {
            return Ok(false);
        };
        tx.execute(
            "UPDATE networks SET subnet = ?2, gateway = ?3 WHERE id = ?1",
            params![id, subnet, gateway],
        )?;
        for (ep, (address, mac)) in endpoints.iter().zip(new) {
            tx.execute(
                "UPDATE endpoints SET address = ?3, mac = ?4
                 WHERE network_id = ?1 AND container_id = ?2",
                params![id, ep.container_id, address, mac],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Records the endpoint of `container_id` on `network_id` with the address `pick`
    /// chooses from the addresses already taken there (None: the network is full).
    /// An existing endpoint is returned as it is.
    pub fn add_endpoint(
        &mut self,
        network_id: &str,
        container_id: &str,
        aliases: &str,
        pick: impl FnOnce(&HashSet<String>) -> Option<(String, String)>,
    ) -> Result<Option<EndpointRow>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing = tx
            .query_row(
                "SELECT network_id, container_id, address, mac, aliases FROM endpoints
                 WHERE network_id = ?1 AND container_id = ?2",
                [network_id, container_id],
                endpoint_row,
            )
            .optional()?;
        if existing.is_some() {
            return Ok(existing);
        }
        let taken: HashSet<String> = {
            let mut stmt = tx.prepare("SELECT address FROM endpoints WHERE network_id = ?1")?;
            let rows = stmt.query_map([network_id], |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let Some((address, mac)) = pick(&taken) else {
            return Ok(None);
        };
        let row = EndpointRow {
            network_id: network_id.to_string(),
            container_id: container_id.to_string(),
            address,
            mac,
            aliases: aliases.to_string(),
        };
        tx.execute(
            "INSERT INTO endpoints (network_id, container_id, address, mac, aliases)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                row.network_id,
                row.container_id,
                row.address,
                row.mac,
                row.aliases
            ],
        )?;
        tx.commit()?;
        Ok(Some(row))
    }

    /// Endpoints of a network (`Some(id)`) or of every network, in joining order.
    pub fn endpoints(&self, network_id: Option<&str>) -> Result<Vec<EndpointRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT network_id, container_id, address, mac, aliases FROM endpoints
             WHERE ?1 IS NULL OR network_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([network_id], endpoint_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A container's endpoints, in joining order (the first is its primary network).
    pub fn endpoints_of(&self, container_id: &str) -> Result<Vec<EndpointRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT network_id, container_id, address, mac, aliases FROM endpoints
             WHERE container_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt.query_map([container_id], endpoint_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes one endpoint of a container (`Some(network)`) or all of them.
    pub fn remove_endpoints(
        &mut self,
        container_id: &str,
        network_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM endpoints WHERE container_id = ?1 AND (?2 IS NULL OR network_id = ?2)",
            params![container_id, network_id],
        )?;
        Ok(())
    }
}

/// The build cache: a step's key to the image it made.
impl Db {
    pub fn build_cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT image_id FROM build_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn build_cache_put(&mut self, key: &str, image_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO build_cache (key, image_id, created) VALUES (?1, ?2, ?3)",
            params![key, image_id, now()],
        )?;
        Ok(())
    }

    /// Each image the build cache keeps: how many cache entries name it and when the
    /// last of them was made.
    pub fn build_cache_usage(&self) -> Result<Vec<(String, usize, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT image_id, COUNT(*), MAX(created) FROM build_cache GROUP BY image_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as usize, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every image a cache entry points at.
    pub fn build_cache_images(&self) -> Result<HashSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT image_id FROM build_cache")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets the whole cache; returns the images it pointed at.
    pub fn build_cache_clear(&mut self) -> Result<HashSet<String>, StoreError> {
        let images = self.build_cache_images()?;
        self.conn.execute("DELETE FROM build_cache", [])?;
        Ok(images)
    }
}

fn name_free(tx: &rusqlite::Transaction, name: &str) -> Result<(), StoreError> {
    let owner: Option<String> = tx
        .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    match owner {
        Some(id) => Err(StoreError::NameInUse {
            name: name.to_string(),
            id,
        }),
        None => Ok(()),
    }
}

fn set_tag(tx: &rusqlite::Transaction, name: &str, id: &Digest) -> Result<(), StoreError> {
    let current: Option<String> = tx
        .query_row("SELECT image_id FROM tags WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    if current.as_deref() != Some(id.as_str()) {
        tx.execute(
            "INSERT OR REPLACE INTO tags (name, image_id, tagged) VALUES (?1, ?2, ?3)",
            params![name, id.as_str(), now()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_on_demand_store_reconnects_with_its_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let mut store = OnDemand::open(&path).unwrap();
        store
            .get()
            .unwrap()
            .remove_exited_container("a", 3, &[])
            .unwrap();
        store.close();
        // Written meanwhile by another connection, read by the new one.
        Db::open(&path)
            .unwrap()
            .remove_exited_container("b", 4, &[])
            .unwrap();
        let db = store.get().unwrap();
        assert_eq!(db.removed_exit("a").unwrap(), Some(3));
        assert_eq!(db.removed_exit("b").unwrap(), Some(4));
        let fk: i64 = db
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        let mode: String = db
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!((fk, mode.as_str()), (1, "wal"));
    }

    #[test]
    fn removed_exit_codes_are_bounded_newest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("db")).unwrap();
        for i in 0..EXITS_KEPT + 100 {
            db.remove_exited_container(&format!("c{i}"), (i % 100) as i32, &[])
                .unwrap();
        }
        let kept: i64 = db
            .conn
            .query_row("SELECT COUNT(*) FROM removed_exits", [], |r| r.get(0))
            .unwrap();
        assert!(kept <= EXITS_KEPT + 1, "{kept}");
        assert_eq!(db.removed_exit("c0").unwrap(), None);
        let last = EXITS_KEPT + 99;
        assert_eq!(
            db.removed_exit(&format!("c{last}")).unwrap(),
            Some((last % 100) as i32)
        );
    }

    fn img(n: u8, tags: &[&str]) -> NewImage {
        let d = |s: &str| Digest::of(format!("{s}{n}").as_bytes());
        NewImage {
            id: d("config"),
            manifest_digest: d("manifest"),
            manifest_media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            created: Some(format!("2024-01-0{n}T00:00:00Z")),
            layers: vec![LayerRow {
                chain_id: d("layer"),
                diff_id: d("layer"),
                parent: None,
                size: 100,
                blob: d("blob"),
                blob_size: 50,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            }],
            tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: vec![],
        }
    }

    #[test]
    fn tags_move_and_images_are_removed_with_their_layers() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("db")).unwrap();
        let a = img(1, &["docker.io/library/a:latest"]);
        let b = img(2, &["docker.io/library/a:latest"]);
        assert!(db.add_image(&a).unwrap());
        assert!(!db.add_image(&a).unwrap());
        assert!(db.add_image(&b).unwrap());
        let all = db.images().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, b.id);
        assert_eq!(all[0].tags, vec!["docker.io/library/a:latest"]);
        assert!(all[1].tags.is_empty());
        assert_eq!(all[1].size, 100);
        assert_eq!(
            db.ids_with_prefix(&a.id.hex()[..5]).unwrap(),
            vec![a.id.clone()]
        );
        db.remove_image(&a.id).unwrap();
        assert_eq!(db.referenced_layers().unwrap().len(), 1);
        assert!(!db.referenced_blobs().unwrap().contains(&a.manifest_digest));
        // Reopening runs no migration twice.
        drop(db);
        let db = Db::open(&dir.path().join("db")).unwrap();
        assert_eq!(db.images().unwrap().len(), 1);
    }

    #[test]
    fn endpoints_get_distinct_addresses_and_keep_their_network() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("db")).unwrap();
        let net = NetworkRow {
            id: "n1".into(),
            name: "appnet".into(),
            driver: "bridge".into(),
            bridge: Some("wh-n1".into()),
            subnet: "10.1.0.0/24".into(),
            gateway: "10.1.0.1".into(),
            ip_range: String::new(),
            internal: false,
            labels: "{}".into(),
            options: "{}".into(),
            created: now(),
        };
        db.add_network(&net).unwrap();
        assert!(matches!(
            db.add_network(&NetworkRow {
                id: "n2".into(),
                ..net.clone()
            }),
            Err(StoreError::NetworkExists(_))
        ));
        // Lowest free address, chosen from what is taken inside the transaction.
        let pick = |taken: &HashSet<String>| {
            (2..255)
                .map(|i| format!("10.1.0.{i}"))
                .find(|a| !taken.contains(a))
                .map(|a| (a, "02:42:00:00:00:00".to_string()))
        };
        let a = db.add_endpoint("n1", "c1", "[]", pick).unwrap().unwrap();
        let b = db.add_endpoint("n1", "c2", "[]", pick).unwrap().unwrap();
        assert_eq!(
            (a.address.as_str(), b.address.as_str()),
            ("10.1.0.2", "10.1.0.3")
        );
        // Joining twice keeps the first endpoint.
        assert_eq!(db.add_endpoint("n1", "c1", "[]", pick).unwrap().unwrap(), a);
        // Renumbering moves the network and every endpoint, in joining order, or nothing.
        assert!(!db
            .renumber_network("n1", "10.9.0.0/24", "10.9.0.1", |_| None)
            .unwrap());
        assert_eq!(db.networks().unwrap()[0].subnet, "10.1.0.0/24");
        let moved = db
            .renumber_network("n1", "10.2.0.0/24", "10.2.0.1", |eps| {
                let order: Vec<&str> = eps.iter().map(|e| e.container_id.as_str()).collect();
                assert_eq!(order, ["c1", "c2"]);
                Some(vec![
                    ("10.2.0.2".into(), "02:42:0a:02:00:02".into()),
                    ("10.2.0.3".into(), "02:42:0a:02:00:03".into()),
                ])
            })
            .unwrap();
        assert!(moved);
        let n = &db.networks().unwrap()[0];
        assert_eq!(
            (n.subnet.as_str(), n.gateway.as_str()),
            ("10.2.0.0/24", "10.2.0.1")
        );
        let eps = db.endpoints(Some("n1")).unwrap();
        assert_eq!(
            (
                eps[1].container_id.as_str(),
                eps[1].address.as_str(),
                eps[1].mac.as_str()
            ),
            ("c2", "10.2.0.3", "02:42:0a:02:00:03")
        );
        assert!(db
            .add_endpoint("n1", "c3", "[]", |_| None)
            .unwrap()
            .is_none());
        assert!(!db.remove_network("n1").unwrap());
        db.remove_endpoints("c1", None).unwrap();
        db.remove_endpoints("c2", Some("n1")).unwrap();
        assert!(db.endpoints(Some("n1")).unwrap().is_empty());
        assert!(db.remove_network("n1").unwrap());
        assert!(db.networks().unwrap().is_empty());
    }
}
