//! Scoring allocates nothing: a counting global allocator watches 1,000 calls.
//! (One `#[global_allocator]` per test binary, hence its own file.)

mod common;

use common::*;
use lsgm::{Chain, Covariance, Model, Quantisation};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn one_thousand_scores_allocate_nothing() {
    let mut rng = StdRng::seed_from_u64(17);
    for (quant, chain, project) in [
        (Quantisation::F32, Chain::Paper, false),
        (Quantisation::U16, Chain::Markov, true),
        (Quantisation::U8, Chain::Paper, true),
    ] {
        let case = random_case(
            &mut rng,
            &[8, 6, 7, 5],
            &[4, 6, 3, 5],
            Covariance::Full,
            chain,
            quant,
            project,
        );
        let bytes = case.spec.encode().unwrap();
        let frames: Vec<Vec<Vec<f32>>> = (0..1000)
            .map(|i| sample_features(&case, &mut rng, [0.5, 3.0, 200.0][i % 3]))
            .collect();
        let refs: Vec<Vec<&[f32]>> = frames
            .iter()
            .map(|f| f.iter().map(Vec::as_slice).collect())
            .collect();
        let model = Model::from_bytes(&bytes).unwrap();
        let mut scratch = vec![0.0; model.scratch_len()];
        let mut contributions = vec![0.0; model.num_layers()];
        let mut checksum = 0.0f64;

        // A frame so far out that layer 0's density overflows.
        let overflowing = [1e30f32; 8];
        let mut far: Vec<&[f32]> = refs[0].clone();
        far[0] = &overflowing[..far[0].len()];

        let before = allocations();
        for r in &refs {
            let s = model.score(r, &mut scratch, &mut contributions).unwrap();
            checksum += model.verdict(s, &contributions, None).score as f64;
        }
        // What the monitor calls: score and verdict in one, overflow included.
        for r in &refs {
            checksum += model
                .judge(r, &mut scratch, &mut contributions, None)
                .unwrap()
                .score as f64;
        }
        let v = model.judge(&far, &mut scratch, &mut contributions, None).unwrap();
        let after = allocations();
        assert!(
            v.ood && v.overflow == Some(0) && v.score == lsgm::OVERFLOW_SCORE,
            "{v:?}"
        );

        assert!(checksum.is_finite());
        assert_eq!(after - before, 0, "{quant:?} {chain:?}: scoring allocated");
    }
    // The counter works: an allocation is seen.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 10]);
    assert!(allocations() > before && v.len() == 10);
}

#[test]
fn decoding_from_static_bytes_allocates_nothing() {
    let mut rng = StdRng::seed_from_u64(2);
    let case = random_case(
        &mut rng,
        &[3, 3],
        &[2, 2],
        Covariance::Diag,
        Chain::Paper,
        Quantisation::U8,
        false,
    );
    let bytes: &'static [u8] = Box::leak(case.spec.encode().unwrap().into_boxed_slice());
    let before = allocations();
    let model = Model::from_bytes(bytes).unwrap();
    let mut scratch = lsgm::Scratch::<64>::new();
    let mut c = [0.0f32; 2];
    let s = model
        .score(&[&[0.1, 0.2], &[0.3, 0.4]], scratch.as_mut_slice(), &mut c)
        .unwrap();
    assert_eq!(allocations() - before, 0);
    assert!(s.is_finite() && model.scratch_len() <= 64);
}
