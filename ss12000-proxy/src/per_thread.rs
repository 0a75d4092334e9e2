//! State kept per thread, for the proxy's connection threads: each thread reaches its own
//! copy without a lock, and nothing moves between threads per request.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

/// A [`PerThread`]'s token and this thread's value of it.
type Slot = (Weak<()>, Box<dyn Any>);

thread_local! {
    /// This thread's values of every live [`PerThread`].
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// A value of type `T` per thread, made on a thread's first use and dropped with the
/// thread or, lazily, after the `PerThread` itself is gone.
pub struct PerThread<T: 'static> {
    token: Arc<()>,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> Default for PerThread<T> {
    fn default() -> Self {
        Self {
            token: Arc::new(()),
            _value: PhantomData,
        }
    }
}

impl<T: 'static> PerThread<T> {
    /// A handle that reaches the same values, without keeping them alive.
    pub fn handle(&self) -> PerThreadHandle<T> {
        PerThreadHandle {
            token: Arc::downgrade(&self.token),
            _value: PhantomData,
        }
    }

    /// Runs `f` on this thread's value, made by `init` if there is none yet.
    pub fn with<R>(&self, init: impl FnOnce() -> T, f: impl FnOnce(&mut T) -> R) -> R {
        with_slot(&Arc::downgrade(&self.token), init, f)
    }
}

/// A weak reference to a [`PerThread`]'s values, for whoever may outlive it.
pub struct PerThreadHandle<T: 'static> {
    token: Weak<()>,
    _value: PhantomData<fn() -> T>,
}

impl<T: 'static> PerThreadHandle<T> {
    /// Runs `f` on this thread's value (made by `init` if needed); `None`, without calling
    /// anything, once the `PerThread` is gone.
    pub fn with<R>(&self, init: impl FnOnce() -> T, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        (self.token.strong_count() > 0).then(|| with_slot(&self.token, init, f))
    }
}

fn with_slot<T: 'static, R>(
    token: &Weak<()>,
    init: impl FnOnce() -> T,
    f: impl FnOnce(&mut T) -> R,
) -> R {
    // The value is taken out while `f` runs, so `f` may use other `PerThread`s.
    let taken = SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        let at = slots.iter().position(|(t, _)| t.ptr_eq(token))?;
        Some(slots.swap_remove(at).1)
    });
    let mut value: Box<T> = match taken.map(|value| value.downcast::<T>()) {
        Some(Ok(value)) => value,
        // Another type under the same token cannot happen: tokens are never shared.
        _ => Box::new(init()),
    };
    let result = f(&mut value);
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        // Values of dropped `PerThread`s go with the next insertion.
        slots.retain(|(t, _)| t.strong_count() > 0);
        slots.push((token.clone(), value));
    });
    result
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
        assert_eq!(handle.with(|| 0, |n| *n), Some(3));
        drop(counter);
        assert_eq!(handle.with(|| 0, |n| *n), None);
        // A nested use of another PerThread inside `with` works.
        let outer = PerThread::<u32>::default();
        let inner = PerThread::<u32>::default();
        let sum = outer.with(|| 1, |a| *a + inner.with(|| 2, |b| *b));
        assert_eq!(sum, 3);
    }
}
