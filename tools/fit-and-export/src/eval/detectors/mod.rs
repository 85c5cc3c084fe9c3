//! The detectors `eval` compares, one file each, and their table. Adding one:
//! a file here implementing
//! [`NamedDetector`](super::detector::NamedDetector) (or, for one detector per tap,
//! [`Detector`](super::detector::Detector)), its `mod` line and one row of
//! [`REGISTRY`].

use super::detector::Entry;

mod energy;
mod gmm_layer;
mod knn;
mod lsgm;
mod mahalanobis;
mod mahalanobis_multi;
mod msp;

pub use energy::{energy, Energy};
pub use gmm_layer::GmmLayer;
pub use knn::{Knn, KnnBank, K};
pub use lsgm::Lsgm;
pub use mahalanobis::{Mahalanobis, TiedGaussians};
pub use mahalanobis_multi::{MahalanobisMulti, StandardisedSum};
pub use msp::{msp, Msp};

/// Every detector `--methods` can name, in report order (`all` runs them all).
pub const REGISTRY: &[Entry] = &[
    Entry::of::<Lsgm>(),
    Entry::of::<Msp>(),
    Entry::of::<Energy>(),
    Entry::of::<Mahalanobis>(),
    Entry::of::<MahalanobisMulti>(),
    Entry::of::<Knn>(),
    Entry::per_tap(gmm_layer::NAME, |tap| Box::new(GmmLayer { tap })),
];
