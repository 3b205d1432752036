//! Bounds on every database wait: limits set on each server session, a client-side limit on
//! every await, a `KILL QUERY` for a statement given up on, and one pool per database per run.
//!
//! A locked table is ended by the server itself (`lock_wait_timeout` = `--timeout`), which frees
//! its query and names the lock; a server that does not answer at all (paused, hung, cut off) is
//! given up on by the client `GRACE` later, its statement killed from a second connection when
//! the server can still take one, and the database is not asked again for the rest of the run.
//! Every statement also carries a server-side run limit (`max_statement_time` on MariaDB,
//! `max_execution_time` for SELECTs on MySQL), so nothing this run started outlives its deadline.
//!
//! A pool belongs to its [`NacosDb`], built once per run by the run's owner, and is closed by it
//! ([`NacosDb::close`]): there is no registry of pools behind the caller's back.

use super::{DbError, NacosDb};
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Pool};
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How much longer than the server's own lock wait the client waits for an answer, so that a
/// locked table is reported by the server's error (its query then gone) rather than by the client.
pub(super) const GRACE: Duration = Duration::from_secs(1);

/// Server-side statement limit when no run deadline was set (library use).
const NO_DEADLINE_SECS: u64 = 3600;

/// A database's pool and what this run learned about it.
pub(super) struct Shared {
    /// The pool (connections are not reset on return: the session limits must stay).
    pub(super) pool: Pool,
    /// Options of the pool, for the second connection that kills a statement.
    opts: Opts,
    /// Connection ids whose session limits are set.
    ready: Mutex<HashSet<u32>>,
    /// Why this database is not asked again in this run (it did not answer).
    down: Mutex<Option<String>>,
    /// The run's deadline: every session gets a server-side statement limit ending there.
    deadline: Option<Instant>,
    /// Statements whose await was dropped before they finished (the run was stopped): their
    /// server-side queries are killed by [`NacosDb::close`].
    orphans: Mutex<Vec<u32>>,
    /// `ssl-mode=preferred`: the plain-text pool's options, for a server without TLS.
    fallback: Option<Opts>,
    /// The plain-text pool, once the server was found to offer no TLS.
    plain: Mutex<Option<Arc<Shared>>>,
    /// Whether the connections are encrypted (`Ssl_cipher` of the first session), once known.
    tls: Mutex<Option<bool>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// A pool made with `opts` (no connection is made yet).
    pub(super) fn new(opts: Opts, deadline: Option<Instant>, fallback: Option<Opts>) -> Arc<Self> {
        Arc::new(Shared {
            pool: Pool::new(opts.clone()),
            opts,
            ready: Mutex::new(HashSet::new()),
            down: Mutex::new(None),
            deadline,
            orphans: Mutex::new(Vec::new()),
            fallback,
            plain: Mutex::new(None),
            tls: Mutex::new(None),
        })
    }

    /// Kill what a stopped run left running, then disconnect the pool cleanly (the server would
    /// log an aborted connection for each one dropped instead), within `bound`.
    async fn close(&self, origin: &str, bound: Duration) {
        let orphans: Vec<u32> = std::mem::take(&mut *lock(&self.orphans));
        let kills =
            futures::future::join_all(orphans.iter().map(|id| kill(&self.opts, *id, bound)));
        for (id, r) in orphans.iter().zip(kills.await) {
            if let Err(e) = r {
                tracing::warn!(
                    "database {origin}: could not kill statement {id} left by the stopped run: {e}"
                );
            }
        }
        if lock(&self.down).is_some() {
            return;
        }
        if tokio::time::timeout(bound, self.pool.clone().disconnect())
            .await
            .is_err()
        {
            tracing::warn!("database {origin} did not close its connections within {bound:?}");
        }
    }
}

/// `f`'s output if it comes within `d`. Polled once first, so an await that is already
/// answered (most rows of a scan, read from the buffer) costs no timer.
pub(super) async fn within<F: Future>(d: Duration, f: F) -> Option<F::Output> {
    let mut f = std::pin::pin!(f);
    if let std::task::Poll::Ready(v) = futures::poll!(f.as_mut()) {
        return Some(v);
    }
    tokio::time::timeout(d, f).await.ok()
}

/// Records the statement as orphaned if its await is dropped unfinished.
struct InFlight<'a> {
    shared: &'a Shared,
    id: u32,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.shared.orphans).push(self.id);
        }
    }
}

/// Which server-side limits a server takes, from its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limits {
    /// MariaDB 10.1+: `max_statement_time` (seconds, every statement).
    MariaDb,
    /// MySQL 5.7.8+: `max_execution_time` (milliseconds, read-only SELECTs).
    MySql,
    /// Older servers: only the lock waits can be bounded.
    LockWaitOnly,
}

impl Limits {
    /// MariaDB reports 10.0 and later (MySQL has no release numbered 10 or above).
    pub(super) fn of(version: (u16, u16, u16)) -> Limits {
        if version >= (10, 1, 1) {
            Limits::MariaDb
        } else if version.0 >= 10 {
            Limits::LockWaitOnly
        } else if version >= (5, 7, 8) {
            Limits::MySql
        } else {
            Limits::LockWaitOnly
        }
    }

    /// The `SET SESSION` statement: locks waited for at most `lock_secs`, statements run for at
    /// most `run_secs` (the time left until the run's deadline).
    pub(super) fn statement(self, lock_secs: u64, run_secs: u64) -> String {
        let lock =
            format!("lock_wait_timeout = {lock_secs}, innodb_lock_wait_timeout = {lock_secs}");
        match self {
            Limits::MariaDb => format!("SET SESSION max_statement_time = {run_secs}, {lock}"),
            Limits::MySql => format!(
                "SET SESSION max_execution_time = {}, {lock}",
                run_secs.saturating_mul(1000)
            ),
            Limits::LockWaitOnly => format!("SET SESSION {lock}"),
        }
    }
}

/// Seconds left until the run's deadline, rounded up, plus one: the run's own stop comes first
/// (and kills what it leaves), the server's limit is the backstop. Never 0 ("no limit").
fn run_secs(deadline: Option<Instant>) -> u64 {
    deadline.map_or(NO_DEADLINE_SECS, |d| {
        let left = d.saturating_duration_since(Instant::now());
        left.as_secs() + u64::from(left.subsec_nanos() > 0) + 1
    })
}

impl NacosDb {
    fn down(&self) -> Option<String> {
        lock(&self.shared.down).clone()
    }

    /// The pool in use: the plain-text one once `preferred` found no TLS on the server.
    fn active(&self) -> Arc<Shared> {
        lock(&self.shared.plain)
            .clone()
            .unwrap_or_else(|| self.shared.clone())
    }

    /// Whether this run's connections to the database are encrypted (known after the first).
    pub fn encrypted(&self) -> Option<bool> {
        *lock(&self.shared.tls)
    }

    fn mark_down(&self, why: &str) {
        let mut d = lock(&self.shared.down);
        if d.is_none() {
            *d = Some(why.to_owned());
        }
    }

    /// A connection with this run's session limits; fails with a message naming the database.
    pub async fn conn(&self) -> Result<Conn, DbError> {
        if let Some(why) = self.down() {
            return Err(DbError(why));
        }
        let mut got = within(self.wait, self.active().pool.get_conn()).await;
        if let (
            Some(Err(mysql_async::Error::Driver(
                mysql_async::DriverError::NoClientSslFlagFromServer,
            ))),
            Some(opts),
        ) = (&got, &self.shared.fallback)
        {
            tracing::info!(
                "database {}: no TLS offered; connecting in plain text (ssl-mode=preferred)",
                self.origin
            );
            let plain = Shared::new(opts.clone(), self.shared.deadline, None);
            *lock(&self.shared.plain) = Some(plain.clone());
            got = within(self.wait, plain.pool.get_conn()).await;
        }
        let sh = self.active();
        let mut conn = match got {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                let denied = matches!(&e, mysql_async::Error::Server(s) if s.code == 1045);
                if denied && self.login_works_over_tls().await {
                    return Err(DbError(format!(
                        "database {}: cannot connect: TLS: the server requires TLS (require_secure_transport) and ssl-mode is disabled: the same login succeeds over TLS; use preferred, required, verify_ca or verify_identity (the server said: {e})",
                        self.origin
                    )));
                }
                return Err(self.err("cannot connect", e));
            }
            None => {
                let e = self.err(
                    "cannot connect",
                    format!(
                        "no answer within {} s (--timeout): the server is unreachable or hung",
                        self.wait.as_secs()
                    ),
                );
                self.mark_down(&e.0);
                return Err(e);
            }
        };
        let id = conn.id();
        if lock(&sh.ready).contains(&id) {
            return Ok(conn);
        }
        let limits = Limits::of(conn.server_version());
        let lock_secs = self.wait.as_secs().max(1);
        let set = limits.statement(lock_secs, run_secs(sh.deadline));
        match self
            .bounded(id, "setting session limits", conn.query_drop(set))
            .await
        {
            Ok(()) => {}
            // A server that refuses the statement limit still gets the lock waits bounded; the
            // client-side bound covers the rest.
            Err(e) if limits != Limits::LockWaitOnly && !e.0.contains("no answer within") => {
                tracing::warn!("{e}; bounding lock waits only");
                self.bounded(
                    id,
                    "setting session limits",
                    conn.query_drop(Limits::LockWaitOnly.statement(lock_secs, 0)),
                )
                .await?;
            }
            Err(e) => return Err(e),
        }
        lock(&sh.ready).insert(id);
        if self.encrypted().is_none() {
            let cipher: Option<(String, String)> = self
                .bounded(
                    id,
                    "reading Ssl_cipher",
                    conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'"),
                )
                .await?;
            let on = cipher.is_some_and(|(_, c)| !c.is_empty());
            *lock(&self.shared.tls) = Some(on);
        }
        Ok(conn)
    }

    /// `ssl-mode=disabled` was refused: whether the same login works over TLS.
    async fn login_works_over_tls(&self) -> bool {
        let Some(opts) = &self.tls_probe else {
            return false;
        };
        match within(self.wait, Conn::new(opts.clone())).await {
            Some(Ok(c)) => {
                let _ = within(self.wait, c.disconnect()).await;
                true
            }
            _ => false,
        }
    }

    /// One await of a statement on connection `id`, bounded on the client. Past the bound the
    /// statement is killed on the server from a second connection, and the error names the
    /// database and `what` it was waiting for.
    pub(super) async fn bounded<T>(
        &self,
        id: u32,
        what: &str,
        f: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<T, DbError> {
        self.answer(id, what, f)
            .await?
            .map_err(|e| self.err(what, e))
    }

    /// Like [`NacosDb::bounded`], but the server's own error is left to the caller.
    pub(super) async fn answer<T>(
        &self,
        id: u32,
        what: &str,
        f: impl Future<Output = Result<T, mysql_async::Error>>,
    ) -> Result<Result<T, mysql_async::Error>, DbError> {
        let sh = self.active();
        let mut guard = InFlight {
            shared: &sh,
            id,
            armed: true,
        };
        let r = within(self.wait + GRACE, f).await;
        guard.armed = false;
        match r {
            Some(r) => Ok(r),
            None => Err(self.gave_up(id, what).await),
        }
    }

    async fn gave_up(&self, id: u32, what: &str) -> DbError {
        let waited = (self.wait + GRACE).as_secs();
        match kill(&self.active().opts, id, self.wait).await {
            Ok(()) => DbError(format!(
                "database {}: {what}: no answer within {waited} s; the statement was killed on the server",
                self.origin
            )),
            Err(e) => {
                let e = DbError(format!(
                    "database {}: {what}: no answer within {waited} s: the server is hung or unreachable \
                     (killing the statement failed too: {e}; the server ends it at the run deadline)",
                    self.origin
                ));
                self.mark_down(&e.0);
                e
            }
        }
    }
}

/// `KILL QUERY id` from a new connection (not the pool's: it may be full of stuck ones).
async fn kill(opts: &Opts, id: u32, wait: Duration) -> Result<(), String> {
    let work = async {
        let mut c = Conn::new(opts.clone()).await?;
        let r = c.query_drop(format!("KILL QUERY {id}")).await;
        let _ = c.disconnect().await;
        match r {
            // "Unknown thread id": the statement ended meanwhile.
            Err(mysql_async::Error::Server(e)) if e.code == 1094 => Ok(()),
            r => r,
        }
    };
    match tokio::time::timeout(wait, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", wait.as_secs())),
    }
}

impl NacosDb {
    /// End this database's work in the run: kill the statements of awaits that were dropped
    /// unfinished (a stopped run), then disconnect its pools. Bounded: a server that does not
    /// answer is left to drop the connections itself. Called by the pool's owner (the run's
    /// context), on the runtime that used the pool; the database is not asked again afterwards.
    pub async fn close(&self) {
        let plain = lock(&self.shared.plain).clone();
        self.shared.close(&self.origin, self.wait).await;
        if let Some(p) = plain {
            p.close(&self.origin, self.wait).await;
        }
        self.mark_down(&format!(
            "database {}: already closed in this run",
            self.origin
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::Limits;

    #[test]
    fn each_server_gets_the_limits_it_knows() {
        assert_eq!(Limits::of((10, 11, 6)), Limits::MariaDb);
        assert_eq!(Limits::of((11, 4, 2)), Limits::MariaDb);
        assert_eq!(Limits::of((8, 0, 36)), Limits::MySql);
        assert_eq!(Limits::of((5, 7, 8)), Limits::MySql);
        assert_eq!(Limits::of((5, 6, 51)), Limits::LockWaitOnly);
        assert_eq!(Limits::of((10, 0, 38)), Limits::LockWaitOnly);
        let m = Limits::MariaDb.statement(5, 90);
        assert!(m.contains("max_statement_time = 90"), "{m}");
        assert!(m.contains("lock_wait_timeout = 5"), "{m}");
        let y = Limits::MySql.statement(5, 90);
        assert!(y.contains("max_execution_time = 90000"), "{y}");
        assert!(!Limits::LockWaitOnly.statement(5, 90).contains("max_"));
    }
}
