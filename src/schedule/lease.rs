//! Coordination through the lake itself, so daemons on one machine or on several sharing an S3
//! bucket never run the same job at once and agree on which ticks are done.
//!
//! Under `<lake>/_macrolake/schedule/<job>/`:
//!
//! - `lease-<generation>.json` — the job's lease: holder, expiry, released flag. Taking or
//!   renewing the lease *creates* the next generation with a conditional put (`PutMode::Create`,
//!   atomic on local disks, S3, GCS and Azure), so of two contenders exactly one succeeds. A
//!   generation is taken over only when it is released or expired, so a crashed holder's lease
//!   lapses after its time-to-live; a holder whose renewal finds the next generation already
//!   taken has lost the lease and stops starting steps.
//! - `state.json` — the last schedule tick handled (run, skipped or interrupted), written only by
//!   the lease holder and never moved backwards, so a restart neither repeats nor loses a tick.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::ScheduleError;
use crate::lake::Lake;

/// One lease generation as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    expires_at: DateTime<Utc>,
    released: bool,
}

/// A lease this process holds.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The job.
    pub job: String,
    generation: u64,
}

/// Result of trying to take a lease.
#[derive(Debug)]
pub enum Acquire {
    /// Taken.
    Acquired(Lease),
    /// Someone else holds it (or won the race for it).
    Held {
        /// Who.
        holder: String,
    },
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
        Self {
            lake: lake.clone(),
            store: lake.store(),
            holder,
            ttl,
            state_lock: Arc::default(),
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

    /// Takes `job`'s lease if it is free, released or expired at `now`.
    pub async fn acquire(&self, job: &str, now: DateTime<Utc>) -> Result<Acquire, ScheduleError> {
        let next = match self.current(job).await? {
            Some((_, r)) if !r.released && r.expires_at > now => {
                return Ok(Acquire::Held { holder: r.holder });
            }
            Some((generation, _)) => generation + 1,
            None => 1,
        };
        let record = LeaseRecord {
            holder: self.holder.clone(),
            expires_at: now + self.ttl,
            released: false,
        };
        if self.create(job, next, &record).await? {
            Ok(Acquire::Acquired(Lease {
                job: job.to_string(),
                generation: next,
            }))
        } else {
            let holder = match self.current(job).await? {
                Some((_, r)) => r.holder,
                None => "(unknown)".into(),
            };
            Ok(Acquire::Held { holder })
        }
    }

    /// Extends a held lease to `now + ttl`; `false` if it was lost (taken over after expiry).
    pub async fn renew(
        &self,
        lease: &mut Lease,
        now: DateTime<Utc>,
    ) -> Result<bool, ScheduleError> {
        let record = LeaseRecord {
            holder: self.holder.clone(),
            expires_at: now + self.ttl,
            released: false,
        };
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
        let record = LeaseRecord {
            holder: self.holder.clone(),
            expires_at: now,
            released: true,
        };
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
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
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
            Acquire::Held { holder } => assert_eq!(holder, "a"),
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
