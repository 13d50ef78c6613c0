//! Destinations: what sluice delivers to, behind one trait. A [`Sink`] is built once per
//! configuration version from a destination's settings (see the pipeline's wiring) and turns
//! a batch of events into one attempt whose [`Verdict`] holds for every event of the batch.
//!
//! - [`webhook`]: POSTs JSON to a URL (one event, or `{"batch": [...]}`), signed with HMAC-SHA256;
//! - [`file`]: appends JSON lines to a file under the data directory, rotated by size;
//! - [`function`]: a destination function (code that sends each event out over `wasi:http`).

pub mod file;
pub mod function;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::DataPlane;
use super::deliver::retry::Verdict;
use super::event::Event;
use crate::workspace::Destination;

/// One attempt's result: the verdict and, when it failed, why; for a batch whose events
/// fared differently (a destination function's `onBatch`), each event's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// What to do next (with `each`: success only if every event succeeded).
    pub verdict: Verdict,
    /// Why it failed (`None` on success).
    pub error: Option<String>,
    /// Each event's result, in the batch's order, when they differ.
    pub each: Option<Vec<Attempt>>,
}

impl Attempt {
    /// Delivered.
    pub fn success() -> Attempt {
        Attempt {
            verdict: Verdict::Success,
            error: None,
            each: None,
        }
    }

    /// Failed with `verdict`, because of `error`.
    pub fn failed(verdict: Verdict, error: impl Into<String>) -> Attempt {
        Attempt {
            verdict,
            error: Some(error.into()),
            each: None,
        }
    }

    /// A batch's result from each event's: one verdict when they agree.
    pub fn per_event(each: Vec<Attempt>) -> Attempt {
        match each.first() {
            Some(first) if each.iter().all(|a| a == first) => first.clone(),
            Some(_) => {
                let failed = each.iter().find(|a| a.verdict != Verdict::Success);
                let (verdict, error) = failed
                    .map(|a| (a.verdict.clone(), a.error.clone()))
                    .unwrap_or((Verdict::Success, None));
                Attempt {
                    verdict,
                    error,
                    each: Some(each),
                }
            }
            None => Attempt::success(),
        }
    }

    /// What holds for the batch's event number `index`.
    pub fn of(&self, index: usize) -> &Attempt {
        self.each
            .as_ref()
            .and_then(|each| each.get(index))
            .unwrap_or(self)
    }
}

/// The future [`Sink::send`] returns.
pub type Sending<'a> = Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;

/// Where one destination's events go.
pub trait Sink: Send + Sync {
    /// How many events one attempt may carry (a webhook's `batchSize`; a file takes many).
    fn batch_size(&self) -> usize;

    /// One attempt at `events` (at most [`Sink::batch_size`]).
    fn send<'a>(&'a self, events: &'a [Event]) -> Sending<'a>;
}

/// A destination type sluice cannot deliver to: every attempt is refused for good.
struct Unsupported(String);

impl Sink for Unsupported {
    fn batch_size(&self) -> usize {
        1000
    }

    fn send<'a>(&'a self, _events: &'a [Event]) -> Sending<'a> {
        let error = format!("sluice cannot deliver to {:?} destinations", self.0);
        Box::pin(async move { Attempt::failed(Verdict::GiveUp, error) })
    }
}

/// The sink for `destination`, from its type and settings.
pub fn sink(plane: &DataPlane, destination: &Destination) -> Arc<dyn Sink> {
    match destination.metadata.id.as_str() {
        "webhook" => Arc::new(webhook::Webhook::new(
            plane.http.clone(),
            &destination.settings,
        )),
        "file" => Arc::new(file::File::new(
            &plane.data_dir,
            &destination.settings,
            plane.config.file_rotate_bytes,
        )),
        other => match function::function_of(plane, destination) {
            Some(f) => function::sink(plane, destination, &f),
            None => Arc::new(Unsupported(other.to_string())),
        },
    }
}
