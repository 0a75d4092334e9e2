//! Peak heap while verifying, parsing and indexing a document, as a multiple of its size:
//! `cargo run --release --example peak_memory -- /tmp/agg/aggregate.jws /tmp/agg/jwks.json`.
//! The input bytes themselves are counted (they are read inside the measured window).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let document_path = args.next().ok_or("usage: peak_memory DOCUMENT JWKS")?;
    let jwks_path = args.next().ok_or("usage: peak_memory DOCUMENT JWKS")?;
    let jwks = fedtls::jwk::Jwks::from_json(&std::fs::read(jwks_path)?)?;
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let document = std::fs::read(&document_path)?;
    let size = document.len();
    let verified = fedtls::verify::verify_metadata(
        &document,
        &jwks,
        &fedtls::verify::VerifyOptions::default(),
    )?;
    let retained = CURRENT.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    println!(
        "document {size} bytes, {} entities; peak heap {peak} bytes = {:.2}x the document; \
         retained {retained} bytes = {:.2}x (input included)",
        verified.index().entities().len(),
        peak as f64 / size as f64,
        retained as f64 / size as f64
    );
    Ok(())
}
