//! What a guest may take from the host: memory, counted across all its memories;
//! table elements, across all its tables; and how many memories, tables and
//! instances it may have. Hitting a limit is reported in words, not as a bare trap.

use wasmtime::{Module, ResourceLimiter};

/// The limits of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of linear memory, all memories together.
    pub memory_bytes: usize,
    /// Elements, all tables together (a pointer each: 8 MiB for a million).
    pub table_elements: usize,
    pub memories: usize,
    pub tables: usize,
    pub instances: usize,
}

/// What suits a distributor: dtlto-mock needs one memory of a few MiB (more for a big
/// job file), one table of a few hundred functions, one instance.
pub const DEFAULT_LIMITS: Limits = Limits {
    memory_bytes: 2 << 30,
    table_elements: 1 << 20,
    memories: 4,
    tables: 4,
    instances: 1,
};

/// A module that declares more memories or tables than the limits allow.
#[derive(Debug, thiserror::Error)]
#[error("the distributor declares {count} {what}; at most {limit} are allowed")]
pub struct TooMany {
    pub count: usize,
    /// `memories` or `tables`.
    pub what: &'static str,
    pub limit: usize,
}

/// Refuses a module whose declarations alone break the limits, before it is
/// instantiated.
pub fn check_module(module: &Module, limits: &Limits) -> Result<(), TooMany> {
    let needs = module.resources_required();
    let declared = [
        (needs.num_memories as usize, limits.memories, "memories"),
        (needs.num_tables as usize, limits.tables, "tables"),
    ];
    for (count, limit, what) in declared {
        if count > limit {
            return Err(TooMany { count, what, limit });
        }
    }
    Ok(())
}

/// Keeps a store within `Limits`, and remembers the first limit the guest hit.
pub struct Limiter {
    limits: Limits,
    memory_bytes: usize,
    table_elements: usize,
    hit: Option<String>,
}

impl Limiter {
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            memory_bytes: 0,
            table_elements: 0,
            hit: None,
        }
    }

    /// The first limit the guest ran into, in words, if any.
    pub fn hit(&self) -> Option<&str> {
        self.hit.as_deref()
    }

    fn refuse(&mut self, why: String) -> wasmtime::Result<bool> {
        self.hit.get_or_insert(why);
        Ok(false)
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.limits.memory_bytes;
        match grow_within(&mut self.memory_bytes, current, desired, limit) {
            Ok(()) => Ok(true),
            Err(total) => self.refuse(format!(
                "the distributor tried to grow its memory to {} in all, beyond the {} \
                 that a distributor's memories may take together",
                bytes_beyond(total, limit),
                bytes(limit)
            )),
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.limits.table_elements;
        match grow_within(&mut self.table_elements, current, desired, limit) {
            Ok(()) => Ok(true),
            Err(total) => self.refuse(format!(
                "the distributor tried to grow its tables to {total} elements in all, \
                 beyond the {limit} that a distributor's tables may hold together"
            )),
        }
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.tables
    }

    fn memories(&self) -> usize {
        self.limits.memories
    }
}

/// Adds a growth from `current` to `desired` to `total` if the sum stays within
/// `limit`; otherwise the sum it would have been. A growth that later fails stays
/// counted: erring towards refusal.
fn grow_within(
    total: &mut usize,
    current: usize,
    desired: usize,
    limit: usize,
) -> Result<(), usize> {
    let grown = total.saturating_add(desired.saturating_sub(current));
    if grown > limit {
        return Err(grown);
    }
    *total = grown;
    Ok(())
}

/// `total`, which is past `limit`, in words that show it: `2.5 GiB`, or
/// `2 GiB and 64 KiB` where rounding would make it read as the limit.
fn bytes_beyond(total: usize, limit: usize) -> String {
    if bytes(total) != bytes(limit) {
        return bytes(total);
    }
    format!("{} and {}", bytes(limit), bytes(total - limit))
}

/// `2 GiB`, `1.25 GiB`, `640 KiB`.
pub fn bytes(n: usize) -> String {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (unit, shift) in UNITS {
        if n >= 1 << shift {
            let value = n as f64 / f64::from(1u32 << shift);
            let value = (value * 100.0).round() / 100.0;
            return format!("{value} {unit}");
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_counted_across_memories() {
        let mut limiter = Limiter::new(DEFAULT_LIMITS);
        let gib = 1usize << 30;
        assert!(limiter.memory_growing(0, gib + gib / 4, None).unwrap());
        assert!(!limiter.memory_growing(0, gib + gib / 4, None).unwrap());
        assert_eq!(
            limiter.hit(),
            Some(
                "the distributor tried to grow its memory to 2.5 GiB in all, beyond the \
                 2 GiB that a distributor's memories may take together"
            )
        );
        assert!(limiter
            .memory_growing(gib + gib / 4, gib * 2 - (64 << 10), None)
            .unwrap());
    }

    #[test]
    fn table_elements_are_counted_across_tables() {
        let mut limiter = Limiter::new(DEFAULT_LIMITS);
        assert!(limiter.table_growing(0, 1 << 19, None).unwrap());
        assert!(!limiter.table_growing(0, (1 << 19) + 1, None).unwrap());
        assert!(limiter.hit().unwrap().contains("1048577 elements"));
    }

    #[test]
    fn a_size_just_past_the_limit_does_not_read_as_the_limit() {
        let limit = 2usize << 30;
        assert_eq!(bytes_beyond(limit + (64 << 10), limit), "2 GiB and 64 KiB");
        assert_eq!(bytes_beyond(limit + (limit / 4), limit), "2.5 GiB");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(2 << 30), "2 GiB");
        assert_eq!(bytes(640 << 10), "640 KiB");
        assert_eq!(bytes(12), "12 bytes");
    }
}
