//! The store, shared by request handlers and background tasks. SQLite calls
//! block, so they run on tokio's blocking threads, one at a time.

use std::sync::{Arc, Mutex};

use parley_store::{Store, StoreError};

/// A cheap handle to the store.
#[derive(Clone)]
pub struct Db(Arc<Mutex<Store>>);

impl Db {
    /// Shares `store`.
    pub fn new(store: Store) -> Db {
        Db(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` with the store on a blocking thread.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let store = inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&store)
        })
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Refused(format!(
                "the database task failed: {e}"
            )))
        })
    }

    /// Runs `f` with the store on this thread (start-up, command line).
    pub fn blocking<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let store = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&store)
    }
}
