//! [`Log`]: the state of one topic, without I/O and without a clock (every
//! call takes `now`). `topic.rs` keeps it behind a mutex that is held for one
//! call at a time, never across an `.await`.
//!
//! ```text
//!   seq:   head                      head + len = tail
//!           │                                   │
//!   ring:  [m0 m1 m2 ............ m(len-1)]     ·   one copy of each message
//!   readers at each entry: [2 0 1 ...]          caught_up (cursor == tail)
//! ```
//!
//! Each subscriber has a cursor: the sequence number of the next message it
//! will take. Each entry counts the subscribers whose cursor is on it, so
//! the entries nobody still needs (a zero count at the front) are dropped
//! without visiting the subscribers, and publishing touches only the ones
//! waiting for a message.

use std::collections::VecDeque;
use std::task::Waker;

use tokio::time::Instant;

use super::config::{Overflow, TopicConfig};
use crate::PreparedMessage;

/// One published message, shared by every subscriber.
#[derive(Debug)]
struct Entry {
    msg: PreparedMessage,
    /// When it was published: a subscriber is responsible for a message
    /// from then on.
    at: Instant,
    /// Subscribers whose cursor is on this entry.
    readers: u32,
}

/// A subscriber as the topic sees it.
#[derive(Debug)]
struct Slot {
    cursor: u64,
    /// The last time the subscriber took messages.
    last_take: Instant,
    /// Set when messages were skipped for it: when it stopped draining
    /// (skipping is not progress).
    stuck_from: Option<Instant>,
    /// Messages skipped for it, in total.
    skipped: u64,
    /// Dropped by the overflow policy: out of every count.
    lagged: bool,
    /// Registered in `Log::waiting`.
    waiting: bool,
    waker: Option<Waker>,
}

/// What [`Log::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Take {
    /// This many messages were appended.
    Got(usize),
    /// Nothing yet; the waker is registered.
    Pending,
    /// The overflow policy dropped this subscriber.
    Lagged,
    /// The topic is closed and everything published was taken.
    Closed,
}

/// What [`Log::publish`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Publish {
    /// Queued for this many subscribers.
    Queued(usize),
    /// No room: the slowest subscriber still needs the oldest message. Try
    /// again when woken, or at the instant given (when a subscriber that
    /// stays behind until then is dropped or skipped).
    Full(Option<Instant>),
}

/// The state of one topic.
#[derive(Debug)]
pub(super) struct Log {
    config: TopicConfig,
    ring: VecDeque<Entry>,
    /// The sequence number of `ring[0]`.
    head: u64,
    /// Subscribers whose cursor is `tail()`: they have taken everything.
    caught_up: u32,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// Subscribers counted in the ring (not lagged).
    active: usize,
    /// Subscribers waiting for the next message.
    waiting: Vec<usize>,
    /// Publishers waiting for room.
    publishers: Vec<Waker>,
    /// A subscriber was skipped and may still be stuck at the head, before
    /// the head's own lag deadline.
    skipping: bool,
    closed: bool,
    /// A vector for the wakers a publish wakes, kept between publishes.
    spare: Vec<Waker>,
}

impl Log {
    pub(super) fn new(config: TopicConfig) -> Self {
        Log {
            ring: VecDeque::with_capacity(config.get_capacity()),
            config,
            head: 0,
            caught_up: 0,
            slots: Vec::new(),
            free: Vec::new(),
            active: 0,
            waiting: Vec::new(),
            publishers: Vec::new(),
            skipping: false,
            closed: false,
            spare: Vec::new(),
        }
    }

    pub(super) fn config(&self) -> &TopicConfig {
        &self.config
    }

    fn tail(&self) -> u64 {
        self.head + self.ring.len() as u64
    }

    /// Subscribers that receive what is published from now on.
    pub(super) fn active(&self) -> usize {
        self.active
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The vector to collect wakers in (see [`Log::put_spare`]).
    pub(super) fn take_spare(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.spare)
    }

    /// Keeps an emptied vector of wakers for the next publish.
    pub(super) fn put_spare(&mut self, spare: Vec<Waker>) {
        if spare.capacity() > self.spare.capacity() {
            self.spare = spare;
        }
    }

    /// Adds a subscriber that receives what is published from now on.
    pub(super) fn subscribe(&mut self, now: Instant) -> usize {
        let slot = Slot {
            cursor: self.tail(),
            last_take: now,
            stuck_from: None,
            skipped: 0,
            lagged: false,
            waiting: false,
            waker: None,
        };
        self.caught_up += 1;
        self.active += 1;
        match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        }
    }

    /// Removes a subscriber; what it had not taken is released.
    pub(super) fn unsubscribe(&mut self, id: usize) {
        let Some(slot) = self.slots.get_mut(id).and_then(Option::take) else { return };
        if slot.waiting {
            if let Some(at) = self.waiting.iter().position(|&w| w == id) {
                self.waiting.swap_remove(at);
            }
        }
        self.free.push(id);
        if !slot.lagged {
            self.release(slot.cursor);
            self.active -= 1;
            self.trim();
        }
    }

    /// Messages skipped for a subscriber so far.
    pub(super) fn skipped(&self, id: usize) -> u64 {
        self.slot(id).map_or(0, |s| s.skipped)
    }

    fn slot(&self, id: usize) -> Option<&Slot> {
        self.slots.get(id).and_then(Option::as_ref)
    }

    /// Uncounts a cursor at `seq`.
    fn release(&mut self, seq: u64) {
        if seq == self.tail() {
            self.caught_up -= 1;
        } else {
            self.ring[(seq - self.head) as usize].readers -= 1;
        }
    }

    /// Counts a cursor at `seq`.
    fn hold(&mut self, seq: u64) {
        if seq == self.tail() {
            self.caught_up += 1;
        } else {
            self.ring[(seq - self.head) as usize].readers += 1;
        }
    }

    /// Drops the messages nobody needs any more; wakes the publishers
    /// waiting for room when that made some.
    fn trim(&mut self) {
        let full = self.ring.len() >= self.config.get_capacity();
        while self.ring.front().is_some_and(|e| e.readers == 0) {
            self.ring.pop_front();
            self.head += 1;
        }
        let room = self.ring.len() < self.config.get_capacity();
        if (full && room) || self.active == 0 {
            // Few publishers, woken under the lock.
            self.publishers.drain(..).for_each(Waker::wake);
        }
    }

    /// Appends up to `max` messages for subscriber `id` to `out` and moves
    /// its cursor past them; registers `waker` when there is none yet.
    pub(super) fn take(
        &mut self,
        id: usize,
        out: &mut impl Extend<PreparedMessage>,
        max: usize,
        now: Instant,
        waker: &Waker,
    ) -> Take {
        let (head, tail, closed) = (self.head, self.tail(), self.closed);
        let Some(slot) = self.slots.get_mut(id).and_then(Option::as_mut) else { return Take::Closed };
        if slot.lagged {
            return Take::Lagged;
        }
        let from = slot.cursor;
        if from == tail {
            if closed {
                return Take::Closed;
            }
            if !slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                slot.waker = Some(waker.clone());
            }
            if !slot.waiting {
                slot.waiting = true;
                self.waiting.push(id);
            }
            return Take::Pending;
        }
        let to = tail.min(from + max.max(1) as u64);
        slot.cursor = to;
        slot.last_take = now;
        slot.stuck_from = None;
        let start = (from - head) as usize;
        out.extend(self.ring.range(start..(to - head) as usize).map(|e| e.msg.clone()));
        self.release(from);
        self.hold(to);
        if from == head {
            self.trim();
        }
        Take::Got((to - from) as usize)
    }

    /// Whether the overflow policy dropped subscriber `id`.
    pub(super) fn is_lagged(&self, id: usize) -> bool {
        self.slot(id).is_none_or(|s| s.lagged)
    }

    /// Whether the overflow policy dropped subscriber `id`; registers
    /// `waker` to hear of it while the subscriber writes.
    pub(super) fn poll_lagged(&mut self, id: usize, waker: &Waker) -> bool {
        let Some(slot) = self.slots.get_mut(id).and_then(Option::as_mut) else { return true };
        if !slot.lagged && !slot.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            slot.waker = Some(waker.clone());
        }
        slot.lagged
    }

    /// Queues `msg` for every subscriber, if there is room; the wakers of
    /// the subscribers waiting for it are moved to `wake` (to be woken
    /// once the lock is released). When there is none, `publisher` is
    /// registered to hear of room.
    pub(super) fn publish(
        &mut self,
        msg: &PreparedMessage,
        now: Instant,
        wake: &mut Vec<Waker>,
        publisher: &Waker,
    ) -> Publish {
        if self.closed || self.active == 0 {
            return Publish::Queued(0);
        }
        self.trim();
        let capacity = self.config.get_capacity();
        let mut deadline = None;
        if self.ring.len() >= capacity {
            deadline = self.apply_overflow(now, wake);
            self.trim();
        }
        if self.ring.len() >= capacity {
            if !self.publishers.iter().any(|w| w.will_wake(publisher)) {
                self.publishers.push(publisher.clone());
            }
            return Publish::Full(deadline);
        }
        self.ring.push_back(Entry { msg: msg.clone(), at: now, readers: self.caught_up });
        self.caught_up = 0;
        for id in self.waiting.drain(..) {
            if let Some(slot) = self.slots[id].as_mut() {
                slot.waiting = false;
                wake.extend(slot.waker.take());
            }
        }
        Publish::Queued(self.active)
    }

    /// The ring is full: drops or skips the subscribers at its head that
    /// made no progress for the lag time. Returns when to look again.
    fn apply_overflow(&mut self, now: Instant, wake: &mut Vec<Waker>) -> Option<Instant> {
        let lag = self.config.get_lag();
        let overflow = self.config.get_overflow();
        let head_at = self.ring.front()?.at;
        if overflow == Overflow::Wait {
            return None;
        }
        // Nobody can be past the lag time before the head message is.
        if !self.skipping && now < head_at + lag {
            return Some(head_at + lag);
        }
        let (head, tail) = (self.head, self.tail());
        let mut next = None::<Instant>;
        let mut still_skipping = false;
        let (mut dropped, mut skipped) = (0u32, 0u32);
        for slot in self.slots.iter_mut().flatten() {
            if slot.lagged || slot.cursor != head {
                continue;
            }
            let since = slot.stuck_from.unwrap_or(slot.last_take.max(head_at));
            if now < since + lag {
                next = Some(next.map_or(since + lag, |n| n.min(since + lag)));
                continue;
            }
            match overflow {
                Overflow::Close => {
                    slot.lagged = true;
                    wake.extend(slot.waker.take());
                    dropped += 1;
                }
                Overflow::DropOldest | Overflow::Wait => {
                    slot.cursor = head + 1;
                    slot.skipped += 1;
                    slot.stuck_from = Some(since);
                    still_skipping = true;
                    skipped += 1;
                }
            }
        }
        self.skipping = still_skipping;
        if let Some(entry) = self.ring.front_mut() {
            entry.readers -= dropped + skipped;
        }
        self.active -= dropped as usize;
        if head + 1 == tail {
            self.caught_up += skipped;
        } else if let Some(entry) = self.ring.get_mut(1) {
            entry.readers += skipped;
        }
        next.or(Some(head_at + lag))
    }

    /// Closes the topic: subscribers take what is left, then end.
    pub(super) fn close(&mut self, wake: &mut Vec<Waker>) {
        self.closed = true;
        for id in self.waiting.drain(..) {
            if let Some(slot) = self.slots[id].as_mut() {
                slot.waiting = false;
                wake.extend(slot.waker.take());
            }
        }
        self.publishers.drain(..).for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::Message;

    fn msg(i: usize) -> PreparedMessage {
        PreparedMessage::new(&Message::text(i.to_string())).unwrap()
    }

    fn log(capacity: usize, overflow: Overflow) -> Log {
        Log::new(TopicConfig::default().capacity(capacity).lag(Duration::from_secs(1)).overflow(overflow))
    }

    fn publish(log: &mut Log, i: usize, now: Instant) -> Publish {
        log.publish(&msg(i), now, &mut Vec::new(), Waker::noop())
    }

    fn take(log: &mut Log, id: usize, max: usize, now: Instant) -> (Take, Vec<PreparedMessage>) {
        let mut out = Vec::new();
        let took = log.take(id, &mut out, max, now, Waker::noop());
        (took, out)
    }

    #[test]
    fn every_subscriber_gets_every_message_once() {
        let now = Instant::now();
        let mut log = log(4, Overflow::Close);
        let (a, b) = (log.subscribe(now), log.subscribe(now));
        for i in 0..3 {
            assert_eq!(publish(&mut log, i, now), Publish::Queued(2));
        }
        assert_eq!(take(&mut log, a, 10, now), (Take::Got(3), vec![msg(0), msg(1), msg(2)]));
        assert_eq!(take(&mut log, a, 10, now).0, Take::Pending);
        assert_eq!(take(&mut log, b, 2, now), (Take::Got(2), vec![msg(0), msg(1)]));
        // Taken by both: dropped from the ring.
        assert_eq!((log.head, log.ring.len()), (2, 1));
        assert_eq!(take(&mut log, b, 2, now), (Take::Got(1), vec![msg(2)]));
        assert!(log.ring.is_empty());
    }

    #[test]
    fn a_full_ring_waits_for_a_subscriber_that_keeps_up() {
        let t0 = Instant::now();
        let mut log = log(2, Overflow::Close);
        let a = log.subscribe(t0);
        publish(&mut log, 0, t0);
        publish(&mut log, 1, t0);
        // Full, and `a` is not yet past the lag time: wait until it would be.
        assert_eq!(publish(&mut log, 2, t0), Publish::Full(Some(t0 + Duration::from_secs(1))));
        // It takes one message just before the deadline: room, no drop.
        let t1 = t0 + Duration::from_millis(900);
        assert_eq!(take(&mut log, a, 1, t1).0, Take::Got(1));
        assert_eq!(publish(&mut log, 2, t1), Publish::Queued(1));
        // Full again: it has until t1 + lag now.
        let t2 = t0 + Duration::from_millis(1500);
        assert_eq!(publish(&mut log, 3, t2), Publish::Full(Some(t1 + Duration::from_secs(1))));
        let t3 = t1 + Duration::from_secs(1);
        assert_eq!(publish(&mut log, 3, t3), Publish::Queued(0));
        assert_eq!(take(&mut log, a, 10, t3).0, Take::Lagged);
        assert_eq!(log.active(), 0);
    }

    #[test]
    fn a_stuck_subscriber_is_skipped_one_message_at_a_time() {
        let t0 = Instant::now();
        let mut log = log(2, Overflow::DropOldest);
        let (stuck, fine) = (log.subscribe(t0), log.subscribe(t0));
        publish(&mut log, 0, t0);
        publish(&mut log, 1, t0);
        take(&mut log, fine, 10, t0);
        let late = t0 + Duration::from_secs(2);
        for i in 2..6 {
            // Skipping is not progress: no new lag time for each message.
            assert_eq!(publish(&mut log, i, late), Publish::Queued(2), "message {i}");
            assert_eq!(take(&mut log, fine, 10, late), (Take::Got(1), vec![msg(i)]));
        }
        assert_eq!(log.skipped(stuck), 4);
        assert_eq!(take(&mut log, stuck, 10, late), (Take::Got(2), vec![msg(4), msg(5)]));
    }

    #[test]
    fn the_wait_policy_never_drops() {
        let t0 = Instant::now();
        let mut log = log(1, Overflow::Wait);
        let a = log.subscribe(t0);
        publish(&mut log, 0, t0);
        assert_eq!(publish(&mut log, 1, t0 + Duration::from_secs(3600)), Publish::Full(None));
        assert_eq!(take(&mut log, a, 1, t0).0, Take::Got(1));
        assert_eq!(publish(&mut log, 1, t0), Publish::Queued(1));
    }

    #[test]
    fn unsubscribing_releases_what_was_not_taken() {
        let now = Instant::now();
        let mut log = log(2, Overflow::Wait);
        let (a, b) = (log.subscribe(now), log.subscribe(now));
        publish(&mut log, 0, now);
        publish(&mut log, 1, now);
        take(&mut log, a, 10, now);
        assert_eq!(publish(&mut log, 2, now), Publish::Full(None));
        log.unsubscribe(b);
        assert_eq!(log.active(), 1);
        assert!(log.ring.is_empty());
        assert_eq!(publish(&mut log, 2, now), Publish::Queued(1));
        // A freed slot is reused.
        assert_eq!(log.subscribe(now), b);
    }

    #[test]
    fn publishing_wakes_only_the_waiting_subscribers() {
        let now = Instant::now();
        let mut log = log(8, Overflow::Close);
        let (a, _b) = (log.subscribe(now), log.subscribe(now));
        assert_eq!(take(&mut log, a, 10, now).0, Take::Pending);
        let mut wake = Vec::new();
        log.publish(&msg(0), now, &mut wake, Waker::noop());
        assert_eq!(wake.len(), 1);
        wake.clear();
        log.publish(&msg(1), now, &mut wake, Waker::noop());
        assert!(wake.is_empty());
    }

    #[test]
    fn closing_ends_subscribers_after_what_is_left() {
        let now = Instant::now();
        let mut log = log(8, Overflow::Close);
        let a = log.subscribe(now);
        publish(&mut log, 0, now);
        log.close(&mut Vec::new());
        assert_eq!(take(&mut log, a, 10, now).0, Take::Got(1));
        assert_eq!(take(&mut log, a, 10, now).0, Take::Closed);
        assert_eq!(publish(&mut log, 1, now), Publish::Queued(0));
    }
}
