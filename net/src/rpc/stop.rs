//! A local stop signal: many tasks on one executor wait for one `stop()`.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use glommio::sync::Semaphore;

/// A cloneable, executor-local stop signal. `wait()` resolves once `stop()` was called on any
/// clone; later `wait()` calls resolve at once.
#[derive(Clone)]
pub struct StopSignal {
    inner: Rc<StopInner>,
}

struct StopInner {
    stopped: Cell<bool>,
    /// Never holds permits: closing it wakes every waiter at once, which is all we need.
    wakeup: Semaphore,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal::new()
    }
}

impl StopSignal {
    /// Returns a signal that has not fired.
    pub fn new() -> StopSignal {
        StopSignal {
            inner: Rc::new(StopInner {
                stopped: Cell::new(false),
                wakeup: Semaphore::new(0),
            }),
        }
    }

    /// Fires the signal; idempotent.
    pub fn stop(&self) {
        if !self.inner.stopped.replace(true) {
            self.inner.wakeup.close();
        }
    }

    /// Reports whether the signal has fired.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.get()
    }

    /// Resolves once the signal has fired.
    pub async fn wait(&self) {
        if self.is_stopped() {
            return;
        }
        // `acquire` on a closed semaphore returns an error, and nothing ever signals permits,
        // so this returns exactly when `stop()` closes it.
        let _ = self.inner.wakeup.acquire(1).await;
    }

    /// Fires this signal when `external` resolves (detached task on the current executor).
    pub fn fire_on(&self, external: impl Future<Output = ()> + 'static) {
        let signal = self.clone();
        glommio::spawn_local(async move {
            futures_lite::future::or(external, signal.wait()).await;
            signal.stop();
        })
        .detach();
    }
}
