//! The blocking `GetAllocs` calls parked on one shard, woken only when their own node changes.
//!
//! Every client holds one `GetAllocs` open, so a shard parks one call per node it owns. If
//! each call waited on the published view itself, every commit would wake all of them (tens
//! of thousands of cross-core wakes and timers) to find that almost none had anything new.
//! Instead one task per shard watches the view and compares each newly published state with
//! the one before it; the persistent maps share every untouched subtree, so the comparison
//! costs only what changed. It wakes the calls of the nodes whose allocation index or record
//! changed, and nothing else. The waiters are shard-owned and never leave their core.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use imbl::ordmap::DiffItem;
use imbl::OrdMap;
use sched::structs::Node;
use tokio::sync::oneshot;

use super::shard::ShardCore;
use crate::state::{ClusterState, IdKey};

/// What the watch task compares between consecutive states.
pub struct Seen {
    node_alloc_index: OrdMap<IdKey, u64>,
    nodes: OrdMap<IdKey, Arc<Node>>,
}

impl Seen {
    pub fn of(state: &ClusterState) -> Seen {
        Seen {
            node_alloc_index: state.node_alloc_index.clone(),
            nodes: state.nodes.clone(),
        }
    }
}

/// One parked call.
struct Waiter {
    id: u64,
    wake: oneshot::Sender<()>,
}

/// The parked `GetAllocs` calls of one shard, by node.
#[derive(Default)]
pub struct AllocWatchers {
    next_id: Cell<u64>,
    by_node: RefCell<HashMap<IdKey, Vec<Waiter>>>,
}

/// A parked call's ticket: await `woken`, and `cancel` it if the call gives up first.
pub struct Parked {
    pub node: IdKey,
    pub id: u64,
    pub woken: oneshot::Receiver<()>,
}

impl AllocWatchers {
    /// Parks a call for `node` until the next published state that changes the node.
    ///
    /// Call it with no await between reading the latest state and parking: the watch task
    /// compares every state published after that one, so no change can slip between.
    pub fn park(&self, node: IdKey) -> Parked {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (wake, woken) = oneshot::channel();
        self.by_node
            .borrow_mut()
            .entry(node.clone())
            .or_default()
            .push(Waiter { id, wake });
        Parked { node, id, woken }
    }

    /// Forgets a parked call that stopped waiting (its deadline passed).
    pub fn cancel(&self, parked: &Parked) {
        let mut by_node = self.by_node.borrow_mut();
        if let Some(waiters) = by_node.get_mut(&parked.node) {
            waiters.retain(|w| w.id != parked.id);
            if waiters.is_empty() {
                by_node.remove(&parked.node);
            }
        }
    }

    /// How many calls are parked.
    pub fn parked(&self) -> usize {
        self.by_node.borrow().values().map(Vec::len).sum()
    }

    /// Wakes every call parked for `node`; returns how many.
    fn wake(&self, node: &IdKey) -> usize {
        let Some(waiters) = self.by_node.borrow_mut().remove(node) else {
            return 0;
        };
        let n = waiters.len();
        for waiter in waiters {
            // A call that has gone away dropped its receiver; nothing to do for it.
            let _ = waiter.wake.send(());
        }
        n
    }

    /// Wakes the calls of every node whose allocation index or node record differs between
    /// `before` and `after`; returns how many calls it woke.
    pub fn wake_changed(&self, before: &Seen, after: &Seen) -> usize {
        if self.by_node.borrow().is_empty() {
            return 0;
        }
        let mut woken = 0;
        for item in before.node_alloc_index.diff(&after.node_alloc_index) {
            woken += self.wake(diff_key(&item));
        }
        // A node deregistered or registered again (perhaps with a new secret) must answer
        // its parked call too.
        for item in before.nodes.diff(&after.nodes) {
            woken += self.wake(diff_key(&item));
        }
        woken
    }

    /// Wakes every parked call (the view is gone: the server is stopping).
    fn wake_all(&self) {
        let all: Vec<IdKey> = self.by_node.borrow().keys().cloned().collect();
        for node in all {
            self.wake(&node);
        }
    }
}

fn diff_key<'a, V>(item: &DiffItem<'a, 'a, IdKey, V>) -> &'a IdKey {
    match item {
        DiffItem::Add(k, _) | DiffItem::Remove(k, _) => k,
        DiffItem::Update { new: (k, _), .. } => k,
    }
}

/// Runs on each shard: follows the published view and wakes the calls whose node changed.
pub async fn watch_loop(core: Rc<ShardCore>) {
    let mut view = core.shared.view.clone();
    // Only the two compared maps are kept between states, not the whole previous state.
    let mut seen = Seen::of(&view.borrow_and_update());
    loop {
        if view.changed().await.is_err() {
            core.alloc_watchers.wake_all();
            return;
        }
        let next = Seen::of(&view.borrow_and_update());
        core.alloc_watchers.wake_changed(&seen, &next);
        seen = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, secret: &str) -> Arc<Node> {
        let mut node = sched::testing::node(id, 0, 0);
        node.secret_id = secret.into();
        Arc::new(node)
    }

    /// A state with `nodes` nodes, each with an allocation index of 1.
    fn state_with(nodes: usize) -> ClusterState {
        let mut state = ClusterState::default();
        for i in 0..nodes {
            let id = format!("node-{i}");
            state.nodes.insert(IdKey::new(&id), node(&id, "s"));
            state.node_alloc_index.insert(IdKey::new(&id), 1);
        }
        state
    }

    #[test]
    fn only_the_calls_of_a_changed_node_are_woken() {
        let watchers = AllocWatchers::default();
        let before = state_with(1_000);
        let mut a = watchers.park(IdKey::new("node-7"));
        let mut a_again = watchers.park(IdKey::new("node-7"));
        let mut b = watchers.park(IdKey::new("node-8"));
        assert_eq!(watchers.parked(), 3);

        let mut after = before.clone();
        after.index = 40;
        after.node_alloc_index.insert(IdKey::new("node-7"), 40);
        after.node_alloc_index.insert(IdKey::new("node-9"), 40);
        assert_eq!(
            watchers.wake_changed(&Seen::of(&before), &Seen::of(&after)),
            2
        );
        assert!(a.woken.try_recv().is_ok());
        assert!(a_again.woken.try_recv().is_ok());
        assert!(b.woken.try_recv().is_err(), "node-8 did not change");
        assert_eq!(watchers.parked(), 1);

        // A commit that touches no node's allocations or record wakes nothing.
        let mut later = after.clone();
        later.index = 41;
        assert_eq!(
            watchers.wake_changed(&Seen::of(&after), &Seen::of(&later)),
            0
        );
        assert!(b.woken.try_recv().is_err());
    }

    #[test]
    fn a_node_removed_or_registered_again_wakes_its_calls() {
        let watchers = AllocWatchers::default();
        let before = state_with(10);
        let mut gone = watchers.park(IdKey::new("node-1"));
        let mut rekeyed = watchers.park(IdKey::new("node-2"));
        let mut after = before.clone();
        after.nodes.remove(&IdKey::new("node-1"));
        after
            .nodes
            .insert(IdKey::new("node-2"), node("node-2", "new secret"));
        assert_eq!(
            watchers.wake_changed(&Seen::of(&before), &Seen::of(&after)),
            2
        );
        assert!(gone.woken.try_recv().is_ok());
        assert!(rekeyed.woken.try_recv().is_ok());
    }

    #[test]
    fn a_cancelled_call_is_forgotten_and_the_others_stay() {
        let watchers = AllocWatchers::default();
        let before = state_with(3);
        let first = watchers.park(IdKey::new("node-0"));
        let mut second = watchers.park(IdKey::new("node-0"));
        watchers.cancel(&first);
        assert_eq!(watchers.parked(), 1);
        let mut after = before.clone();
        after.node_alloc_index.insert(IdKey::new("node-0"), 9);
        assert_eq!(
            watchers.wake_changed(&Seen::of(&before), &Seen::of(&after)),
            1
        );
        assert!(second.woken.try_recv().is_ok());
        watchers.cancel(&first);
        assert_eq!(watchers.parked(), 0);
    }
}
