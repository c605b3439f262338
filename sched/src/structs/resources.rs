//! Resource quantities: what a task asks for and what a node offers.

use rkyv::{Archive, Deserialize, Serialize};

/// A bundle of schedulable quantities. Used both for asks (task, group, allocation totals)
/// and for offers (node capacity, node reservations, node usage).
#[derive(Archive, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_mhz: u64,
    pub memory_mb: u64,
    /// Memory a task may burst to when oversubscription is enabled; 0 means "same as memory_mb".
    pub memory_max_mb: u64,
    pub disk_mb: u64,
}

impl Resources {
    /// Returns the element-wise sum.
    pub fn add(&self, other: &Resources) -> Resources {
        Resources {
            cpu_mhz: self.cpu_mhz + other.cpu_mhz,
            memory_mb: self.memory_mb + other.memory_mb,
            memory_max_mb: self.memory_max_mb + other.memory_max_mb,
            disk_mb: self.disk_mb + other.disk_mb,
        }
    }

    /// Returns the element-wise difference, saturating at zero.
    pub fn sub(&self, other: &Resources) -> Resources {
        Resources {
            cpu_mhz: self.cpu_mhz.saturating_sub(other.cpu_mhz),
            memory_mb: self.memory_mb.saturating_sub(other.memory_mb),
            memory_max_mb: self.memory_max_mb.saturating_sub(other.memory_max_mb),
            disk_mb: self.disk_mb.saturating_sub(other.disk_mb),
        }
    }

    /// Returns the first dimension in which `self` (an ask) does not fit into `free`,
    /// using Nomad's dimension names ("cpu", "memory", "disk").
    pub fn exceeds(&self, free: &Resources) -> Option<&'static str> {
        if self.cpu_mhz > free.cpu_mhz {
            return Some("cpu");
        }
        if self.memory_mb > free.memory_mb {
            return Some("memory");
        }
        if self.disk_mb > free.disk_mb {
            return Some("disk");
        }
        None
    }
}
