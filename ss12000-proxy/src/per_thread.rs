//! State kept per thread, for the proxy's connection threads: each thread reaches its own
//! copy without a lock and without touching memory another thread writes (no shared
//! reference count), so nothing bounces between cores per request.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// One [`PerThread`]'s value on this thread.
struct Slot {
    id: u64,
    /// Whether the `PerThread` still exists; checked only when slots are added.
    alive: Weak<()>,
    /// Taken out while in use (see [`with_slot`]).
    value: Option<Box<dyn Any>>,
}

thread_local! {
    /// This thread's values of every live [`PerThread`].
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// A value of type `T` per thread, made on a thread's first use and dropped with the
/// thread or, lazily, after the `PerThread` itself is gone.
pub struct PerThread<T: 'static> {
    id: u64,
    alive: Arc<()>,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> Default for PerThread<T> {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            _value: PhantomData,
        }
    }
}

impl<T: 'static> PerThread<T> {
    /// A handle that reaches the same values, without keeping them alive.
    pub fn handle(&self) -> PerThreadHandle<T> {
        PerThreadHandle {
            id: self.id,
            _value: PhantomData,
        }
    }

    /// Runs `f` on this thread's value, made by `init` if there is none yet.
    pub fn with<R>(&self, init: impl FnOnce() -> T, f: impl FnOnce(&mut T) -> R) -> R {
        let taken = take(self.id).unwrap_or_else(|| {
            add_slot(self.id, Arc::downgrade(&self.alive));
            None
        });
        let mut value = taken.unwrap_or_else(|| Box::new(init()));
        let result = f(&mut value);
        put_back(self.id, value);
        result
    }
}

/// Reaches a [`PerThread`]'s value on threads that already have one, for whoever may
/// outlive it.
pub struct PerThreadHandle<T: 'static> {
    id: u64,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> PerThreadHandle<T> {
    /// Runs `f` on this thread's value; `None`, without calling it, when this thread has
    /// none (it never used the `PerThread`, or the `PerThread` is gone).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut value = take::<T>(self.id)??;
        let result = f(&mut value);
        put_back(self.id, value);
        Some(result)
    }
}

/// Takes this thread's value of `id` out of its slot: `None` without a slot, `Some(None)`
/// with a slot but no value yet (or one in use further up the stack).
fn take<T: 'static>(id: u64) -> Option<Option<Box<T>>> {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let slot = slots.iter_mut().find(|slot| slot.id == id)?;
        if slot.alive.strong_count() == 0 {
            return None;
        }
        // Ids are never reused, so the type always matches.
        Some(slot.value.take().and_then(|v| v.downcast::<T>().ok()))
    })
}

fn add_slot(id: u64, alive: Weak<()>) {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        // Values of dropped `PerThread`s go now.
        slots.retain(|slot| slot.alive.strong_count() > 0);
        slots.push(Slot {
            id,
            alive,
            value: None,
        });
    });
}

fn put_back<T: 'static>(id: u64, value: Box<T>) {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        if let Some(slot) = slots.iter_mut().find(|slot| slot.id == id) {
            slot.value = Some(value);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_thread_has_its_own_value_and_dropped_ones_are_forgotten() {
        let counter = PerThread::<u32>::default();
        let bump = |c: &PerThread<u32>| {
            c.with(
                || 0,
                |n| {
                    *n += 1;
                    *n
                },
            )
        };
        assert_eq!(bump(&counter), 1);
        assert_eq!(bump(&counter), 2);
        let other = std::thread::scope(|s| s.spawn(|| bump(&counter)).join().unwrap());
        assert_eq!(other, 1, "another thread starts afresh");
        assert_eq!(bump(&counter), 3);

        let handle = counter.handle();
        assert_eq!(handle.with(|n| *n), Some(3));
        let elsewhere = std::thread::scope(|s| s.spawn(|| handle.with(|n| *n)).join().unwrap());
        assert_eq!(elsewhere, None, "a thread that never used it has no value");
        drop(counter);
        assert_eq!(handle.with(|n| *n), None);

        // A nested use of another PerThread inside `with` works.
        let outer = PerThread::<u32>::default();
        let inner = PerThread::<u32>::default();
        let sum = outer.with(|| 1, |a| *a + inner.with(|| 2, |b| *b));
        assert_eq!(sum, 3);
    }
}
