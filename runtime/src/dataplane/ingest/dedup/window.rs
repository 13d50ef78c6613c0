//! The ids seen within the window, in memory: a queue of generations, each a hash set of the
//! ids first seen in one span of time (an eighth of the window). A generation is dropped whole
//! once its newest id is older than the window, so an id is remembered for at least the window
//! and at most the window plus one span, and expiry never walks the ids one by one.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::Id;

/// Generations per window: the longest an id may outlive the window is one of them.
const GENERATIONS: u64 = 8;

/// The hasher of [`Id`]s: they are already uniform (keyed BLAKE3), so their low 64 bits are
/// the hash.
#[derive(Default)]
pub(super) struct Uniform(u64);

impl Hasher for Uniform {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used by `Id`; fold anything else in, to stay correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u128(&mut self, id: u128) {
        self.0 = id as u64;
    }
}

type Ids = HashSet<Id, BuildHasherDefault<Uniform>>;

/// The ids first seen in `[start, start + span)`, ms since the epoch.
pub(super) struct Generation {
    pub start: u64,
    pub ids: Ids,
}

/// The window's generations, oldest first, and how many ids they hold.
pub(super) struct Window {
    window: u64,
    span: u64,
    capacity: usize,
    generations: VecDeque<Generation>,
    held: usize,
}

impl Window {
    /// An empty window of `window` ms holding at most about `capacity` ids.
    pub fn new(window: u64, capacity: usize) -> Window {
        Window {
            window,
            span: (window / GENERATIONS).max(1),
            capacity,
            generations: VecDeque::new(),
            held: 0,
        }
    }

    /// The start of the generation `at` (ms) belongs to: starts are multiples of the span, so a
    /// restart finds the same generations in the journal's file names.
    pub fn start_of(&self, at: u64) -> u64 {
        at - at % self.span
    }

    /// Whether a generation starting at `start` is wholly older than the window at `now`.
    pub fn expired(&self, start: u64, now: u64) -> bool {
        start.saturating_add(self.span).saturating_add(self.window) <= now
    }

    /// Adds ids read back from the journal to the generation starting at `start` (oldest
    /// generations first). Duplicates across generations are harmless.
    pub fn restore(&mut self, start: u64, ids: impl Iterator<Item = Id>) {
        let ids: Ids = ids.collect();
        self.held += ids.len();
        self.generations.push_back(Generation { start, ids });
    }

    /// Moves the window to `now`: opens the current generation, drops the expired ones and,
    /// past the capacity, the oldest ones early. Returns the dropped generations' starts and
    /// whether any was dropped early; the caller frees their memory and files outside its lock.
    pub fn advance(&mut self, now: u64) -> Advanced {
        let mut dropped = Advanced::default();
        let start = self.start_of(now);
        if self.generations.back().is_none_or(|g| g.start < start) {
            self.generations.push_back(Generation {
                start,
                ids: Ids::default(),
            });
        }
        while let Some(oldest) = self.generations.front() {
            let expired = self.expired(oldest.start, now);
            let over = self.held > self.capacity && self.generations.len() > 1;
            if !expired && !over {
                break;
            }
            dropped.early |= !expired;
            if let Some(g) = self.generations.pop_front() {
                self.held -= g.ids.len();
                dropped.generations.push(g);
            }
        }
        dropped
    }

    /// The start of the newest generation, the one [`Window::insert`] records in (after
    /// [`Window::advance`], the current one, unless the clock went back).
    pub fn newest(&self) -> Option<u64> {
        self.generations.back().map(|g| g.start)
    }

    /// The start of the oldest generation held.
    pub fn oldest(&self) -> Option<u64> {
        self.generations.front().map(|g| g.start)
    }

    /// Records `id` in the current generation unless some generation holds it; whether it is
    /// new. Call [`Window::advance`] first. A hash lookup per generation (at most nine).
    pub fn insert(&mut self, id: Id) -> bool {
        // The newest first: a retry is usually of a recent request.
        if self.generations.iter().rev().any(|g| g.ids.contains(&id)) {
            return false;
        }
        match self.generations.back_mut() {
            Some(current) => {
                current.ids.insert(id);
                self.held += 1;
                true
            }
            None => true,
        }
    }

    /// Removes `ids` recorded in the generation starting at `start` (a request that was not
    /// stored after all).
    pub fn remove(&mut self, start: u64, ids: &[Id]) {
        if let Some(g) = self.generations.iter_mut().find(|g| g.start == start) {
            for id in ids {
                if g.ids.remove(id) {
                    self.held -= 1;
                }
            }
        }
    }
}

/// What [`Window::advance`] dropped.
#[derive(Default)]
pub(super) struct Advanced {
    /// The dropped generations, for the caller to free.
    pub generations: Vec<Generation>,
    /// Whether one was dropped before its time, for the capacity.
    pub early: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_live_between_one_window_and_one_span_more() {
        let mut w = Window::new(800, 1_000);
        w.advance(1_000);
        assert!(w.insert(7));
        assert!(!w.insert(7));
        // 100 ms spans: the id's generation [1000, 1100) expires at 1900.
        w.advance(1_899);
        assert!(!w.insert(7));
        let dropped = w.advance(1_900);
        assert_eq!(dropped.generations.len(), 1);
        assert!(!dropped.early);
        assert!(w.insert(7));
    }

    #[test]
    fn past_the_capacity_the_oldest_generation_goes_first() {
        let mut w = Window::new(800, 2);
        w.advance(0);
        assert!(w.insert(1));
        assert!(w.insert(2));
        w.advance(100);
        assert!(w.insert(3));
        let dropped = w.advance(200);
        assert!(dropped.early);
        assert!(w.insert(1), "the oldest generation was dropped");
        assert!(!w.insert(3), "the newer one was kept");
    }

    #[test]
    fn a_removed_id_is_new_again() {
        let mut w = Window::new(800, 10);
        w.advance(0);
        assert!(w.insert(1));
        w.remove(0, &[1]);
        assert!(w.insert(1));
    }
}
