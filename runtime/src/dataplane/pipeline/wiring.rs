//! Each source's pipeline, built once per configuration version: the source, its tracking
//! plan's rules with their compiled validators, its insert function chain, and its enabled
//! destinations with their own chains and their [`Sink`]s (and its connected warehouses,
//! whose sink stages their events). A change anywhere in the
//! workspace bumps the store's version; the next chunk of that source's events rebuilds the
//! wiring, and nothing is read from the store per event.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::enforce::Plan;
use super::functions::{Step, Unavailable};
use crate::dataplane::DataPlane;
use crate::dataplane::destinations::{self, Sink};
use crate::dataplane::warehouse::stage::Stager;
use crate::engine::Function;
use crate::workspace::{
    Destination, Function as FunctionRecord, InsertFunctionInstance, Kind, Source, StoreError,
    Version, Warehouse,
};

/// One destination of a source, ready to deliver to.
pub struct Route {
    /// The destination.
    pub destination: Destination,
    /// Its insert functions, in order.
    pub chain: Vec<Step>,
    /// How to send to it.
    pub sink: Arc<dyn Sink>,
}

/// A source's pipeline.
pub struct Wiring {
    /// The configuration version it was built from.
    pub version: u64,
    /// The source (`None` once deleted: its events are dropped).
    pub source: Option<Source>,
    /// Its tracking plan, if one is connected.
    pub plan: Option<Plan>,
    /// Its insert functions, in order.
    pub chain: Vec<Step>,
    /// Its enabled destinations.
    pub routes: Vec<Route>,
}

impl Wiring {
    /// The route to `destination_id`, if it is still an enabled destination of this source.
    pub fn route(&self, destination_id: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.destination.id == destination_id)
    }
}

/// Why a wiring could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that builds it failed.
    #[error("the wiring task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The wirings built so far, per source.
#[derive(Default)]
pub struct Wirings {
    built: Mutex<HashMap<String, Arc<Wiring>>>,
    builds: AtomicU64,
}

impl Wirings {
    /// How many wirings were built since start (a test watches it).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// `source_id`'s wiring for the store's current version: the cached one (a lock and a
    /// hash lookup), or a new one built from the store (list scans, function loads).
    ///
    /// # Errors
    /// The store cannot be read, or the task building it failed.
    pub async fn get(
        &self,
        plane: &Arc<DataPlane>,
        source_id: &str,
    ) -> Result<Arc<Wiring>, WiringError> {
        let version = plane.store.version();
        if let Some(w) = self.cached(source_id, version) {
            return Ok(w);
        }
        let plane2 = plane.clone();
        let id = source_id.to_string();
        let wiring = tokio::task::spawn_blocking(move || build(&plane2, &id, version)).await??;
        let wiring = Arc::new(wiring);
        self.builds.fetch_add(1, Ordering::Relaxed);
        plane.observe.prometheus.wiring_built(source_id);
        if let Ok(mut built) = self.built.lock() {
            built.insert(source_id.to_string(), wiring.clone());
        }
        Ok(wiring)
    }

    fn cached(&self, source_id: &str, version: u64) -> Option<Arc<Wiring>> {
        let built = self.built.lock().ok()?;
        built
            .get(source_id)
            .filter(|w| w.version == version)
            .cloned()
    }
}

/// Builds `source_id`'s wiring from the store (blocking: sled reads, function loads).
fn build(plane: &DataPlane, source_id: &str, version: u64) -> Result<Wiring, StoreError> {
    let source: Option<Source> = plane.store.get(Kind::Source, source_id)?;
    let mut wiring = Wiring {
        version,
        source: None,
        plan: None,
        chain: Vec::new(),
        routes: Vec::new(),
    };
    let Some(source) = source else {
        return Ok(wiring);
    };
    wiring.plan = Plan::load(&plane.store, &plane.validators, source_id)?;
    let instances: Vec<InsertFunctionInstance> = plane.store.list(Kind::InsertFunction, "")?;
    // Deleted instances' warm pools go (pools are per instance: `function_for`).
    let live: HashSet<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    plane.components.retain_instances(|id| live.contains(id));
    wiring.chain = chain(plane, &instances, source_id)?;
    for destination in plane
        .store
        .list::<Destination>(Kind::Destination, "")?
        .into_iter()
        .filter(|d| d.enabled && d.source_id == source_id)
    {
        wiring.routes.push(Route {
            chain: chain(plane, &instances, &destination.id)?,
            sink: destinations::sink(plane, &destination),
            destination,
        });
    }
    warehouse_routes(plane, &mut wiring, source_id)?;
    wiring.source = Some(source);
    Ok(wiring)
}

/// A route per enabled warehouse connected to the source: its sink stages the events for
/// the warehouse's sync loop. The route's destination stands for the warehouse (its id and
/// name, so `integrations` can name it); a staging log that cannot open leaves it out.
fn warehouse_routes(
    plane: &DataPlane,
    wiring: &mut Wiring,
    source_id: &str,
) -> Result<(), StoreError> {
    for w in plane
        .store
        .list::<Warehouse>(Kind::Warehouse, "")?
        .into_iter()
        .filter(|w| w.enabled && w.source_ids.iter().any(|s| s == source_id))
    {
        let log = match plane.warehouses.staging(&w.id) {
            Ok(log) => log,
            Err(e) => {
                tracing::error!(warehouse = %w.id, error = %e, "cannot open its staging log");
                continue;
            }
        };
        let sink = Arc::new(Stager {
            source_id: source_id.to_string(),
            log,
        });
        wiring.routes.push(Route {
            destination: Destination {
                id: w.id,
                name: w.name,
                enabled: true,
                metadata: w.metadata,
                source_id: source_id.to_string(),
                settings: serde_json::Map::new(),
                created_at: w.created_at,
                updated_at: w.updated_at,
            },
            chain: Vec::new(),
            sink,
        });
    }
    Ok(())
}

/// The enabled instances attached to `integration_id`, in order, with their functions loaded.
fn chain(
    plane: &DataPlane,
    instances: &[InsertFunctionInstance],
    integration_id: &str,
) -> Result<Vec<Step>, StoreError> {
    let mut mine: Vec<&InsertFunctionInstance> = instances
        .iter()
        .filter(|i| i.enabled && i.integration_id == integration_id)
        .collect();
    mine.sort_by_key(|i| i.order);
    mine.into_iter()
        .map(|instance| {
            let settings =
                serde_json::to_string(&instance.settings).unwrap_or_else(|_| "{}".into());
            Ok(Step {
                function: load(plane, instance, &settings)?,
                settings,
                instance: instance.clone(),
            })
        })
        .collect()
}

/// The function an instance runs: its own warm instances, never shared with another
/// instance (settings and globals stay with their attachment).
fn load(
    plane: &DataPlane,
    instance: &InsertFunctionInstance,
    settings: &str,
) -> Result<Result<Arc<Function>, Unavailable>, StoreError> {
    let function_id = &instance.function_id;
    let Some(record) = plane
        .store
        .get::<FunctionRecord>(Kind::Function, function_id)?
    else {
        return Ok(Err(Unavailable::Deleted));
    };
    let Some(version_id) = record.deployed_version_id else {
        return Ok(Err(Unavailable::NotDeployed));
    };
    let key = format!("{function_id}/{version_id}");
    let Some(version) = plane.store.get::<Version>(Kind::FunctionVersion, &key)? else {
        return Ok(Err(Unavailable::VersionMissing));
    };
    Ok(plane
        .components
        .function_for(&instance.id, &version.digest, settings)
        .map_err(|e| Unavailable::Load(e.to_string())))
}
