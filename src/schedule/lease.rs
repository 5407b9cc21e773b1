//! Coordination through the lake itself, so daemons on one machine or on several sharing an S3
//! bucket never run the same job at once and agree on which ticks are done.
//!
//! Under `<lake>/_macrolake/schedule/<job>/`:
//!
//! - `lease-<generation>.json` — the job's lease: holder, expiry, released flag. Taking or
//!   renewing the lease *creates* the next generation with a conditional put (`PutMode::Create`,
//!   atomic on local disks, S3, GCS and Azure), so of two contenders exactly one succeeds. A
//!   generation is taken over only when it is released, expired, or its holder's process is
//!   known to be gone (same host, boot and PID namespace, and that pid with that start time no
//!   longer runs: see [`super::liveness`]); so a run killed on this machine is taken over at once,
//!   one crashed elsewhere after its time-to-live. A holder whose renewal finds the next
//!   generation already taken has lost the lease and stops starting steps.
//! - Breaking a lease by hand ([`Coordinator::break_lease`], `macrolake run --force-break-lease
//!   --yes`) writes the next generation whatever the expiry, except over a holder verified alive
//!   on this machine; a live holder elsewhere that renews afterwards finds its lease lost.
//! - `state.json` — the last schedule tick handled (run, skipped or interrupted), written only by
//!   the lease holder and never moved backwards, so a restart neither repeats nor loses a tick.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::ScheduleError;
use super::liveness::{Liveness, ProcessIdentity, judge};
use crate::lake::Lake;

/// One lease generation as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    expires_at: DateTime<Utc>,
    released: bool,
    /// When this generation was written (absent in leases of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    renewed_at: Option<DateTime<Utc>>,
    /// The writing process (absent in leases of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<ProcessIdentity>,
}

/// A lease this process holds.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The job.
    pub job: String,
    generation: u64,
    /// The holder this lease was taken over from (its process was gone, or it was broken by
    /// hand), if any.
    pub took_over: Option<HeldBy>,
}

/// Who holds a lease, as its newest generation says.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldBy {
    /// The holder's name (`host:pid:random` unless a daemon was given `--holder`).
    pub holder: String,
    /// Its process, when recorded.
    pub process: Option<ProcessIdentity>,
    /// When it last wrote the lease, when recorded.
    pub renewed_at: Option<DateTime<Utc>>,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
    /// What this process could tell about the holder's process.
    pub liveness: Liveness,
}

impl std::fmt::Display for HeldBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lease held by {}", self.holder)?;
        match &self.process {
            Some(p) => write!(f, " (host {}, pid {})", p.host, p.pid)?,
            None => write!(f, " (host and pid not recorded)")?,
        }
        let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        if let Some(t) = self.renewed_at {
            write!(f, ", last renewed {}", fmt(t))?;
        }
        write!(f, ", expires {}", fmt(self.expires_at))?;
        match &self.liveness {
            Liveness::Alive => write!(f, "; its process is running on this host"),
            Liveness::Dead(why) => write!(f, "; {why}"),
            Liveness::Unknown(_) => Ok(()),
        }
    }
}

/// Result of trying to take a lease.
#[derive(Debug)]
pub enum Acquire {
    /// Taken.
    Acquired(Lease),
    /// Someone else holds it (or won the race for it).
    Held(HeldBy),
}

/// The per-job state object.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    last_tick: DateTime<Utc>,
    holder: String,
}

/// Leases and tick state of one daemon (`holder`) in one lake.
#[derive(Debug, Clone)]
pub struct Coordinator {
    lake: Lake,
    store: Arc<dyn ObjectStore>,
    /// This daemon's identity (host, pid, random suffix).
    pub holder: String,
    /// The process recorded in this coordinator's leases.
    process: ProcessIdentity,
    /// The process judging other holders' liveness (this one).
    judge_as: ProcessIdentity,
    ttl: Duration,
    state_lock: Arc<tokio::sync::Mutex<()>>,
}

fn store_err(
    action: &'static str,
    path: &Path,
) -> impl FnOnce(object_store::Error) -> ScheduleError {
    let path = path.to_string();
    move |source| ScheduleError::Store {
        action,
        path,
        source,
    }
}

impl Coordinator {
    /// A coordinator for `holder` whose leases last `ttl` unless renewed.
    pub fn new(lake: &Lake, holder: String, ttl: Duration) -> Self {
        let me = ProcessIdentity::current();
        Self {
            lake: lake.clone(),
            store: lake.store(),
            holder,
            process: me.clone(),
            judge_as: me,
            ttl,
            state_lock: Arc::default(),
        }
    }

    /// Records `process` in this coordinator's leases instead of this process (tests and tools
    /// that act for another process).
    pub fn recording_as(mut self, process: ProcessIdentity) -> Self {
        self.process = process;
        self
    }

    fn record(&self, expires_at: DateTime<Utc>, released: bool, now: DateTime<Utc>) -> LeaseRecord {
        LeaseRecord {
            holder: self.holder.clone(),
            expires_at,
            released,
            renewed_at: Some(now),
            process: Some(self.process.clone()),
        }
    }

    fn held_by(&self, record: LeaseRecord) -> HeldBy {
        let liveness = match &record.process {
            Some(p) => judge(p, &self.judge_as),
            None => Liveness::Unknown("the lease does not record its process".into()),
        };
        HeldBy {
            holder: record.holder,
            process: record.process,
            renewed_at: record.renewed_at,
            expires_at: record.expires_at,
            liveness,
        }
    }

    /// The lease time-to-live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn dir(&self, job: &str) -> Path {
        self.lake.path(&format!("_macrolake/schedule/{job}"))
    }

    fn lease_path(&self, job: &str, generation: u64) -> Path {
        self.dir(job)
            .clone()
            .join(format!("lease-{generation:020}.json"))
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &Path,
    ) -> Result<Option<T>, ScheduleError> {
        let bytes = match self.store.get(path).await {
            Ok(r) => r.bytes().await.map_err(store_err("read", path))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_err("read", path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ScheduleError::Corrupt {
                path: path.to_string(),
                message: e.to_string(),
            })
    }

    /// The newest lease generation of `job` and its record.
    async fn current(&self, job: &str) -> Result<Option<(u64, LeaseRecord)>, ScheduleError> {
        let dir = self.dir(job);
        let objects: Vec<_> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(store_err("list", &dir))?;
        let newest = objects
            .iter()
            .filter_map(|o| {
                o.location
                    .filename()?
                    .strip_prefix("lease-")?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max();
        let Some(generation) = newest else {
            return Ok(None);
        };
        match self
            .read_json::<LeaseRecord>(&self.lease_path(job, generation))
            .await?
        {
            Some(record) => Ok(Some((generation, record))),
            // Deleted by its holder's clean-up between listing and reading: a newer one exists.
            None => Ok(Some((
                generation,
                LeaseRecord {
                    holder: "(renewing)".into(),
                    expires_at: DateTime::<Utc>::MAX_UTC,
                    released: false,
                    renewed_at: None,
                    process: None,
                },
            ))),
        }
    }

    /// Writes generation `generation` if nobody has; `false` when somebody already did.
    async fn create(
        &self,
        job: &str,
        generation: u64,
        record: &LeaseRecord,
    ) -> Result<bool, ScheduleError> {
        let path = self.lease_path(job, generation);
        let body = serde_json::to_vec_pretty(record).expect("lease records serialise");
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => return Ok(false),
            Err(e) => return Err(store_err("write", &path)(e)),
        }
        // Older generations are history; keep the previous one for readers mid-listing.
        for old in generation.saturating_sub(3)..generation.saturating_sub(1) {
            let _ = self.store.delete(&self.lease_path(job, old)).await;
        }
        Ok(true)
    }

    /// Takes `job`'s lease if it is free, released or expired at `now`, or if its holder's
    /// process is gone from this machine (see [`super::liveness`]).
    pub async fn acquire(&self, job: &str, now: DateTime<Utc>) -> Result<Acquire, ScheduleError> {
        let (next, took_over) = match self.current(job).await? {
            Some((generation, r)) if !r.released && r.expires_at > now => {
                let held = self.held_by(r);
                let Liveness::Dead(why) = &held.liveness else {
                    return Ok(Acquire::Held(held));
                };
                tracing::warn!(job, holder = %held.holder, "taking over the lease: {why}");
                (generation + 1, Some(held))
            }
            Some((generation, _)) => (generation + 1, None),
            None => (1, None),
        };
        self.take(job, next, now, took_over).await
    }

    /// Takes `job`'s lease whatever its expiry: for a holder that crashed on another host (whose
    /// process this machine cannot check). Refuses ([`ScheduleError::HolderAlive`]) when the
    /// holder's process is verified running on this machine. A live holder elsewhere loses the
    /// lease at its next renewal and stops starting steps.
    pub async fn break_lease(
        &self,
        job: &str,
        now: DateTime<Utc>,
    ) -> Result<Acquire, ScheduleError> {
        let (next, took_over) = match self.current(job).await? {
            Some((generation, r)) => {
                let held = self.held_by(r);
                if held.liveness == Liveness::Alive {
                    return Err(ScheduleError::HolderAlive {
                        job: job.to_string(),
                        held: Box::new(held),
                    });
                }
                tracing::warn!(job, holder = %held.holder, "breaking the lease by hand");
                (generation + 1, Some(held))
            }
            None => (1, None),
        };
        self.take(job, next, now, took_over).await
    }

    async fn take(
        &self,
        job: &str,
        next: u64,
        now: DateTime<Utc>,
        took_over: Option<HeldBy>,
    ) -> Result<Acquire, ScheduleError> {
        let record = self.record(now + self.ttl, false, now);
        if self.create(job, next, &record).await? {
            Ok(Acquire::Acquired(Lease {
                job: job.to_string(),
                generation: next,
                took_over,
            }))
        } else {
            // Somebody else wrote that generation first.
            match self.current(job).await? {
                Some((_, r)) => Ok(Acquire::Held(self.held_by(r))),
                None => Ok(Acquire::Held(HeldBy {
                    holder: "(unknown)".into(),
                    process: None,
                    renewed_at: None,
                    expires_at: now + self.ttl,
                    liveness: Liveness::Unknown("the lease vanished".into()),
                })),
            }
        }
    }

    /// Extends a held lease to `now + ttl`; `false` if it was lost (taken over after expiry).
    pub async fn renew(
        &self,
        lease: &mut Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, ScheduleError> {
        let record = self.record(now + self.ttl, false, now);
        if self
            .create(&lease.job, lease.generation + 1, &record)
            .await?
        {
            lease.generation += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Gives a lease up so another daemon may take it at once.
    pub async fn release(&self, lease: Lease, now: DateTime<Utc>) -> Result<(), ScheduleError> {
        let record = self.record(now, true, now);
        self.create(&lease.job, lease.generation + 1, &record)
            .await
            .map(|_| ())
    }

    /// The last tick handled for `job`, if the daemon has seen it before.
    pub async fn last_tick(&self, job: &str) -> Result<Option<DateTime<Utc>>, ScheduleError> {
        let path = self.dir(job).clone().join("state.json");
        Ok(self.read_json::<State>(&path).await?.map(|s| s.last_tick))
    }

    /// Records `tick` as handled, unless a later tick already is (the state never moves back).
    pub async fn set_last_tick(&self, job: &str, tick: DateTime<Utc>) -> Result<(), ScheduleError> {
        let _guard = self.state_lock.lock().await;
        if self.last_tick(job).await?.is_some_and(|t| t >= tick) {
            return Ok(());
        }
        let path = self.dir(job).clone().join("state.json");
        let body = serde_json::to_vec_pretty(&State {
            last_tick: tick,
            holder: self.holder.clone(),
        })
        .expect("state serialises");
        self.store
            .put(&path, PutPayload::from(body))
            .await
            .map_err(store_err("write", &path))?;
        Ok(())
    }
}

/// An identity for this daemon: host name, process id and a random suffix.
pub fn default_holder() -> String {
    let host = super::liveness::host_name();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &suffix[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_expired_leases_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let a = Coordinator::new(&lake, "a".into(), Duration::seconds(60));
        let b = Coordinator::new(&lake, "b".into(), Duration::seconds(60));
        let Acquire::Acquired(mut la) = a.acquire("nightly", at(0)).await.unwrap() else {
            panic!("first taker wins")
        };
        match b.acquire("nightly", at(30)).await.unwrap() {
            Acquire::Held(held) => assert_eq!(held.holder, "a"),
            other => panic!("{other:?}"),
        }
        // Renewed at 50 s, so still held at 90 s.
        assert!(a.renew(&mut la, at(50)).await.unwrap());
        assert!(matches!(
            b.acquire("nightly", at(90)).await.unwrap(),
            Acquire::Held { .. }
        ));
        // a crashes (no more renewals): at 111 s the lease has expired and b takes it over.
        let Acquire::Acquired(lb) = b.acquire("nightly", at(111)).await.unwrap() else {
            panic!("expired lease is taken over")
        };
        // a wakes up and finds it lost the lease.
        assert!(!a.renew(&mut la, at(112)).await.unwrap());
        b.release(lb, at(120)).await.unwrap();
        assert!(matches!(
            a.acquire("nightly", at(121)).await.unwrap(),
            Acquire::Acquired(_)
        ));
        // Other jobs have their own leases.
        assert!(matches!(
            b.acquire("weekly_h41", at(121)).await.unwrap(),
            Acquire::Acquired(_)
        ));
    }

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap()
    }

    #[tokio::test]
    async fn a_holder_whose_process_is_gone_from_this_host_is_taken_over_at_once() {
        let lake = Lake::open("memory://", false).unwrap();
        let mut child = sleeper();
        let crashed = ProcessIdentity::of(child.id()).unwrap();
        let a = Coordinator::new(&lake, "a".into(), Duration::seconds(120))
            .recording_as(crashed.clone());
        let b = Coordinator::new(&lake, "b".into(), Duration::seconds(120));
        let Acquire::Acquired(mut la) = a.acquire("nightly", at(0)).await.unwrap() else {
            panic!("free lease")
        };
        // While its process runs, the lease is held, and cannot be broken by hand.
        match b.acquire("nightly", at(1)).await.unwrap() {
            Acquire::Held(held) => assert_eq!(held.liveness, Liveness::Alive),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            b.break_lease("nightly", at(1)).await,
            Err(ScheduleError::HolderAlive { .. })
        ));
        // kill -9: one second later, 119 s before expiry, the lease is taken over.
        child.kill().unwrap();
        child.wait().unwrap();
        let Acquire::Acquired(lb) = b.acquire("nightly", at(2)).await.unwrap() else {
            panic!("a dead holder's lease is taken over")
        };
        let old = lb.took_over.as_ref().expect("took over");
        assert_eq!(old.holder, "a");
        assert_eq!(old.process.as_ref(), Some(&crashed));
        assert!(matches!(&old.liveness, Liveness::Dead(_)));
        // b's lease records b's (live) process: a third contender is refused.
        let c = Coordinator::new(&lake, "c".into(), Duration::seconds(120));
        assert!(matches!(
            c.acquire("nightly", at(3)).await.unwrap(),
            Acquire::Held(HeldBy {
                liveness: Liveness::Alive,
                ..
            })
        ));
        assert!(!a.renew(&mut la, at(3)).await.unwrap(), "a lost it");
    }

    #[tokio::test]
    async fn another_hosts_holder_waits_for_expiry_or_a_forced_break() {
        let lake = Lake::open("memory://", false).unwrap();
        let mut child = sleeper();
        let mut remote = ProcessIdentity::of(child.id()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // Same pid, dead here: but on another host that pid means nothing to us.
        remote.host = "other-host".into();
        let a = Coordinator::new(&lake, "other-host:1:x".into(), Duration::seconds(120))
            .recording_as(remote);
        let b = Coordinator::new(&lake, "b".into(), Duration::seconds(120));
        let Acquire::Acquired(mut la) = a.acquire("nightly", at(0)).await.unwrap() else {
            panic!("free lease")
        };
        let Acquire::Held(held) = b.acquire("nightly", at(100)).await.unwrap() else {
            panic!("another host's lease is not judged by pid")
        };
        assert!(matches!(&held.liveness, Liveness::Unknown(_)));
        let text = held.to_string();
        for part in [
            "lease held by other-host:1:x",
            "host other-host",
            "last renewed 2026-05-28 20:26:40 UTC",
            "expires 2026-05-28 20:28:40 UTC",
        ] {
            assert!(text.contains(part), "{part:?} not in {text:?}");
        }
        // Broken by hand before expiry; the old holder finds it lost at its next renewal.
        let Acquire::Acquired(lb) = b.break_lease("nightly", at(101)).await.unwrap() else {
            panic!("broken")
        };
        assert_eq!(lb.took_over.unwrap().holder, "other-host:1:x");
        assert!(!a.renew(&mut la, at(102)).await.unwrap());
    }

    #[tokio::test]
    async fn leases_of_older_versions_without_a_process_lapse_at_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let lease_dir = dir.path().join("_macrolake/schedule/nightly");
        std::fs::create_dir_all(&lease_dir).unwrap();
        std::fs::write(
            lease_dir.join("lease-00000000000000000001.json"),
            format!(
                r#"{{"holder":"h:1:x","expires_at":"{}","released":false}}"#,
                at(60).to_rfc3339()
            ),
        )
        .unwrap();
        let b = Coordinator::new(&lake, "b".into(), Duration::seconds(60));
        let Acquire::Held(held) = b.acquire("nightly", at(59)).await.unwrap() else {
            panic!("held until expiry")
        };
        assert!(held.to_string().contains("host and pid not recorded"));
        assert!(matches!(
            b.acquire("nightly", at(61)).await.unwrap(),
            Acquire::Acquired(_)
        ));
    }

    #[tokio::test]
    async fn racing_contenders_get_exactly_one_lease() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let contenders: Vec<_> = (0..8)
            .map(|i| Coordinator::new(&lake, format!("d{i}"), Duration::seconds(60)))
            .collect();
        let results =
            futures::future::join_all(contenders.iter().map(|c| c.acquire("nightly", at(0)))).await;
        let won = results
            .iter()
            .filter(|r| matches!(r, Ok(Acquire::Acquired(_))))
            .count();
        assert_eq!(won, 1, "{results:?}");
    }

    #[tokio::test]
    async fn state_never_moves_back() {
        let lake = Lake::open("memory://", false).unwrap();
        let c = Coordinator::new(&lake, "a".into(), Duration::seconds(60));
        assert_eq!(c.last_tick("j").await.unwrap(), None);
        c.set_last_tick("j", at(100)).await.unwrap();
        c.set_last_tick("j", at(50)).await.unwrap();
        assert_eq!(c.last_tick("j").await.unwrap(), Some(at(100)));
    }
}
