//! Running the nodes of a DAG as soon as what they wait for is done, a few at a time: models that
//! do not read each other build side by side (net liquidity beside the price marts, two marts
//! over the same roles), and sources that do not read each other's tables ingest side by side,
//! where one after another left a core idle through every commit, fetch and planning pause.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;

/// Lets a node's dependents start before the node has finished: what it publishes is in place,
/// and what remains (bookkeeping no dependent reads) need not hold them up. A released node no
/// longer counts against the width. A node that never calls it is released when it finishes.
#[derive(Clone)]
pub(crate) struct Release(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl Release {
    /// Lets the dependents start (the first call; later ones do nothing).
    pub(crate) fn now(&self) {
        let sender = self.0.lock().map(|mut s| s.take()).unwrap_or(None);
        if let Some(tx) = sender {
            let _ = tx.send(());
        }
    }
}

/// Runs every node `i` once each node in `upstream[i]` has finished (or released it), at most
/// `width` at a time, each as its own task: `start(i, done, release)` makes node `i`'s work, where
/// `done[j]` holds node `j`'s result once it has finished (a node released by its upstream before
/// that finds `None` there), and `release` lets node `i`'s dependents start before it finishes
/// ([`Release`]). Ready nodes start in index order, so with a topological order and `width` 1
/// this is the sequential build. A task that panics gets `panicked(message)` as its result; a
/// node that can never run (its upstream is itself or a later node that waits for it) gets
/// `panicked` too, with a message saying so.
pub(crate) async fn run<T, F, Fut>(
    upstream: &[Vec<usize>],
    width: usize,
    mut start: F,
    panicked: impl Fn(String) -> T,
) -> Vec<T>
where
    T: Send + 'static,
    F: FnMut(usize, &[Option<T>], Release) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let n = upstream.len();
    let mut done: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut started = vec![false; n];
    let mut released = vec![false; n];
    // Started, neither finished nor released.
    let mut live = 0;
    let mut running = FuturesUnordered::new();
    let mut releases = FuturesUnordered::new();
    loop {
        for i in 0..n {
            if live >= width.max(1) {
                break;
            }
            let ready = upstream[i]
                .iter()
                .all(|&j| j < n && (done[j].is_some() || released[j]));
            if !started[i] && ready {
                started[i] = true;
                live += 1;
                let (tx, rx) = oneshot::channel();
                let task = tokio::spawn(start(i, &done, Release(Arc::new(Mutex::new(Some(tx))))));
                running.push(async move { (i, task.await) });
                releases.push(async move { (i, rx.await.is_ok()) });
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            // Every outcome of a release matches here: a pattern that refused the `false` of a
            // node that ended without releasing disabled this branch until the next node ended,
            // and the releases in between were not seen (a model's readers waited for its
            // bookkeeping, 17–50 ms a link of the nightly chain).
            Some((i, sent)) = releases.next(), if !releases.is_empty() => {
                if sent && done[i].is_none() {
                    released[i] = true;
                    live -= 1;
                }
            }
            Some((i, result)) = running.next() => {
                if !released[i] {
                    live -= 1;
                }
                done[i] = Some(result.unwrap_or_else(|e| panicked(panic_message(e))));
            }
        }
    }
    done.into_iter()
        .map(|d| d.unwrap_or_else(|| panicked("never ran: it waits for itself".into())))
        .collect()
}

/// What a task's panic said (or that it was cancelled).
fn panic_message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("cancelled: {e}");
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .map(|s| format!("panicked: {s}"))
        .unwrap_or_else(|| "panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Each node's result: the order it finished in, and the results of its upstreams it saw.
    type Seen = (usize, Vec<Option<usize>>);

    /// The finishing order of each of node `i`'s upstreams that has finished.
    fn seen_upstream(
        upstream: &[Vec<usize>],
        i: usize,
        done: &[Option<Seen>],
    ) -> Vec<Option<usize>> {
        upstream[i]
            .iter()
            .map(|&j| done[j].as_ref().map(|d| d.0))
            .collect()
    }

    async fn sleep_and_count(ms: u64, count: Arc<AtomicUsize>) -> usize {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        count.fetch_add(1, Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_starts_after_its_upstreams_and_independent_ones_overlap() {
        // 0 → 2, 1 → 2, 2 → 3; 0 is slow, 1 fast: 1 finishes first although it comes later.
        let upstream = vec![vec![], vec![], vec![0, 1], vec![2]];
        let finished = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let delays = [150, 10, 10, 10];
        let out: Vec<Seen> = run(
            &upstream,
            2,
            |i, done: &[Option<Seen>], _| {
                let seen = seen_upstream(&upstream, i, done);
                let (finished, live, most) = (finished.clone(), live.clone(), most.clone());
                let ms = delays[i];
                async move {
                    let now = live.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let order = sleep_and_count(ms, finished).await;
                    live.fetch_sub(1, Ordering::SeqCst);
                    (order, seen)
                }
            },
            |_| (usize::MAX, vec![]),
        )
        .await;
        assert_eq!(out[1].0, 0, "the fast independent node finished first");
        assert_eq!(out[0].0, 1);
        assert_eq!(out[2], (2, vec![Some(1), Some(0)]), "2 saw both upstreams");
        assert_eq!(out[3], (3, vec![Some(2)]));
        assert_eq!(most.load(Ordering::SeqCst), 2, "0 and 1 ran at once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_released_node_lets_its_dependents_start_and_frees_its_slot() {
        // 0 → 1 → 2 at width 1: 0 releases at once, then works on for 300 ms; 1 and 2 run and
        // finish meanwhile, and see no result of 0 yet. A node that never releases (1) holds
        // its dependent (2) until it finishes.
        let upstream = vec![vec![], vec![0], vec![1]];
        let finished = Arc::new(AtomicUsize::new(0));
        let out: Vec<Seen> = run(
            &upstream,
            1,
            |i, done: &[Option<Seen>], release| {
                let seen = seen_upstream(&upstream, i, done);
                let finished = finished.clone();
                async move {
                    if i == 0 {
                        release.now();
                        release.now(); // a second call does nothing
                    }
                    let order = sleep_and_count(if i == 0 { 300 } else { 10 }, finished).await;
                    (order, seen)
                }
            },
            |_| (usize::MAX, vec![]),
        )
        .await;
        assert_eq!(out[1], (0, vec![None]), "1 ran while 0 was still working");
        assert_eq!(
            out[2],
            (1, vec![Some(0)]),
            "2 waited for 1, which never released"
        );
        assert_eq!(out[0].0, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_release_is_seen_after_another_node_dropped_its_own() {
        // 0 drops its release at once and works 300 ms; 1 releases after 50 ms and works 300 ms;
        // 2 waits for 1. 2 starts on 1's release, before either of them ends.
        let upstream = vec![vec![], vec![], vec![1]];
        let finished = Arc::new(AtomicUsize::new(0));
        let out: Vec<Seen> = run(
            &upstream,
            3,
            |i, done: &[Option<Seen>], release| {
                let seen = seen_upstream(&upstream, i, done);
                let finished = finished.clone();
                let release = (i != 0).then_some(release);
                async move {
                    if i == 1 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Some(release) = release {
                        release.now();
                    }
                    let order = sleep_and_count(if i == 2 { 10 } else { 300 }, finished).await;
                    (order, seen)
                }
            },
            |_| (usize::MAX, vec![]),
        )
        .await;
        assert_eq!(
            out[2],
            (0, vec![None]),
            "2 started on 1's release and ended first"
        );
    }

    #[tokio::test]
    async fn width_one_runs_in_index_order_and_a_panic_is_a_result() {
        let upstream = vec![vec![], vec![], vec![1]];
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let out: Vec<Result<usize, String>> = run(
            &upstream,
            1,
            |i, _done: &[Option<Result<usize, String>>], _| {
                let order = order.clone();
                async move {
                    order.lock().unwrap().push(i);
                    if i == 1 {
                        panic!("node one broke");
                    }
                    Ok(i)
                }
            },
            Err,
        )
        .await;
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);
        assert_eq!(out[0], Ok(0));
        assert_eq!(out[1], Err("panicked: node one broke".into()));
        assert_eq!(
            out[2],
            Ok(2),
            "a node still runs; its start decides what a failed upstream means"
        );
    }

    #[tokio::test]
    async fn a_node_waiting_for_a_later_node_that_waits_for_it_never_runs() {
        let upstream = vec![vec![1], vec![0], vec![]];
        let out: Vec<Result<usize, String>> = run(
            &upstream,
            2,
            |i, _done: &[Option<Result<usize, String>>], _| async move { Ok(i) },
            Err,
        )
        .await;
        assert_eq!(out[2], Ok(2));
        assert!(out[0].as_ref().unwrap_err().contains("never ran"));
        assert!(out[1].as_ref().unwrap_err().contains("never ran"));
    }
}
