//! [`SharedObjects`]: in a cluster, the content-addressed objects every node needs (function
//! components, JavaScript code, compiled artifacts) in the JetStream object store
//! `<prefix>_components`, under the names they have in sled (`components/<blake3>`,
//! `scripts/<blake3>`, `artifacts/<blake3>:<engine>`). Each node copies what it reads into
//! its own sled trees, so an object crosses the network once per node; an artifact compiled by
//! one node is loaded, not compiled, by the others with the same engine build.

use async_nats::jetstream::object_store::{Config, GetErrorKind, ObjectStore};
use tokio::io::AsyncReadExt;

use super::StorageError;
use crate::cluster::{Cluster, ClusterError};

/// The cluster's object store. Cheap to clone.
#[derive(Clone)]
pub struct SharedObjects {
    cluster: Cluster,
    bucket: ObjectStore,
}

impl SharedObjects {
    /// Opens (creating if missing) the bucket `<prefix>_components`.
    ///
    /// # Errors
    /// [`ClusterError::Setup`] when JetStream refuses or cannot be reached.
    pub async fn open(cluster: &Cluster) -> Result<SharedObjects, ClusterError> {
        let name = cluster.name("components");
        let bucket = match cluster.js.get_object_store(&name).await {
            Ok(bucket) => bucket,
            Err(_) => cluster
                .js
                .create_object_store(Config {
                    bucket: name.clone(),
                    description: Some("sluice: function components, code and artifacts".into()),
                    ..Default::default()
                })
                .await
                .map_err(|e| ClusterError::Setup {
                    what: format!("object store {name}"),
                    reason: e.to_string(),
                })?,
        };
        Ok(SharedObjects {
            cluster: cluster.clone(),
            bucket,
        })
    }

    /// Stores `bytes` as `name` unless an object of that name exists (names are content
    /// addresses, so it holds the same bytes). Blocks the calling thread for a round trip,
    /// plus the upload when it is new.
    ///
    /// # Errors
    /// [`StorageError::Cluster`] when NATS cannot be reached.
    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
        self.cluster.wait(async {
            if self.bucket.info(name).await.is_ok() {
                return Ok(());
            }
            let mut reader = bytes;
            self.bucket
                .put(name, &mut reader)
                .await
                .map(|_| ())
                .map_err(|e| StorageError::Cluster(format!("storing {name}: {e}")))
        })
    }

    /// The object `name`, or `None` when the cluster has none. Blocks the calling thread for
    /// the download.
    ///
    /// # Errors
    /// [`StorageError::Cluster`] when NATS cannot be reached.
    pub fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.cluster.wait(async {
            let mut object = match self.bucket.get(name).await {
                Ok(object) => object,
                Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(StorageError::Cluster(format!("reading {name}: {e}"))),
            };
            let mut bytes = Vec::new();
            object
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| StorageError::Cluster(format!("reading {name}: {e}")))?;
            Ok(Some(bytes))
        })
    }
}
