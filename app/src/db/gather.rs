//! Group commit for Herald's two busiest writers, the event writer and the engine's recorder:
//! each takes what waits in its queue and writes it in one transaction. Under load the queue
//! fills while the previous transaction commits, so batches form by themselves; at a steady,
//! moderate rate (an open loop of 1,000 events/s) each item would find the queue empty and
//! get a transaction of its own, and a transaction's cost is mostly fixed (its statements,
//! the commit, the pages of every index it touches). So a writer that finds few items waits a
//! moment for the next ones, but only while they come as a stream, and never longer than
//! `window` after the first (BENCHMARKS.md, "Group commit").

use std::time::Duration;

use tokio::{sync::mpsc, time::Instant};

/// How a writer gathers its batches, and what it saw of the last one.
#[derive(Debug)]
pub struct Gather {
    /// The longest the first item of a batch waits for others to share its transaction.
    window: Duration,
    /// The most items one batch takes.
    most: usize,
    /// A batch this large goes at once.
    enough: usize,
    /// When the previous batch began and how many it took: the rate items arrive at.
    last: Option<(Instant, usize)>,
}

impl Gather {
    /// `window` 0 takes what is queued, as before group commit waited; a batch of `enough`
    /// waits for no more.
    pub fn new(window: Duration, most: usize, enough: usize) -> Self {
        Gather { window, most, enough: enough.min(most), last: None }
    }

    /// Waits for the next batch and appends it to `batch` (empty): answers how many it took, 0
    /// once the queue is closed and empty. When the items came close together lately (at
    /// least one more expected within `window`), it goes on taking them until `enough`, the
    /// end of the window, or a pause twice as long as their usual gap (the senders wait for
    /// this batch's answers: a closed loop); at once when an item is `urgent`.
    pub async fn next<T>(
        &mut self,
        queue: &mut mpsc::Receiver<T>,
        batch: &mut Vec<T>,
        urgent: impl Fn(&T) -> bool,
    ) -> usize {
        if queue.recv_many(batch, self.most).await == 0 {
            return 0;
        }
        let began = Instant::now();
        // The previous batch's items over the time since it began: the arrival rate.
        let gap = self.last.and_then(|(at, n)| (began - at).checked_div(n as u32));
        if let Some(gap) = gap.filter(|g| !self.window.is_zero() && *g <= self.window) {
            let deadline = began + self.window;
            let pause = (gap * 2).max(Duration::from_micros(200));
            while batch.len() < self.enough && !batch.iter().any(&urgent) {
                let until = deadline.min(Instant::now() + pause);
                let room = self.most - batch.len();
                match tokio::time::timeout_at(until, queue.recv_many(batch, room)).await {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        self.last = Some((began, batch.len()));
        batch.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_gathered_and_a_lone_item_or_a_pause_is_not_waited_for() {
        let (tx, mut rx) = mpsc::channel(64);
        let mut gather = Gather::new(Duration::from_millis(5), 64, 32);
        let mut batch = Vec::new();

        // The first item: nothing known of the rate, so it goes alone and at once.
        tx.send(0).await.unwrap();
        let start = Instant::now();
        assert_eq!(gather.next(&mut rx, &mut batch, |_| false).await, 1);
        assert_eq!(Instant::now(), start);

        // A stream of one item a millisecond: the next batch waits for those of its window.
        let sender = {
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 1..=20 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    tx.send(i).await.unwrap();
                }
            })
        };
        batch.clear();
        let n = gather.next(&mut rx, &mut batch, |_| false).await;
        assert!((4..=7).contains(&n), "a 5 ms window at 1/ms gathers ~5, got {n}");
        // An urgent item ends the wait.
        batch.clear();
        let n = gather.next(&mut rx, &mut batch, |i| i % 2 == 0).await;
        assert!(n <= 2, "stops at the first urgent item, took {n}");
        sender.await.unwrap();

        // The senders stop (they wait for answers): the batch goes after a pause of twice the
        // usual gap, not at the end of the window.
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), rx.recv()).await {}
        for i in 0..3 {
            tx.send(100 + i).await.unwrap();
        }
        batch.clear();
        let before = Instant::now();
        gather.last = Some((before - Duration::from_millis(1), 4)); // 0.25 ms a gap
        assert_eq!(gather.next(&mut rx, &mut batch, |_| false).await, 3);
        assert!(Instant::now() - before < Duration::from_millis(5), "did not wait out the window");

        // A slow stream (one item per 10 ms, more than the window): nothing to wait for.
        gather.last = Some((Instant::now() - Duration::from_millis(10), 1));
        tx.send(200).await.unwrap();
        batch.clear();
        let before = Instant::now();
        assert_eq!(gather.next(&mut rx, &mut batch, |_| false).await, 1);
        assert_eq!(Instant::now(), before);

        // Closed and empty: 0.
        drop(tx);
        batch.clear();
        assert_eq!(gather.next(&mut rx, &mut batch, |_| false).await, 0);
    }
}
