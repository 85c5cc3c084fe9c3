//! The detectors `eval` compares, one file each, and their table. Adding one:
//! a file here implementing
//! [`NamedDetector`](super::detector::NamedDetector) (or, for one detector per tap,
//! [`Detector`](super::detector::Detector)), its `mod` line and one row of
//! [`REGISTRY`]; `--methods`, its help, the reports and the tests follow the
//! table. Re-export its scoring function below when a test checks it
//! against an independent computation (`tests/baselines.rs` and
//! `tools/fixtures/baselines_fixture.py`).

use super::detector::Entry;

mod ash;
mod energy;
mod fdbd;
mod gen;
mod gmm_layer;
mod knn;
mod lsgm;
mod mahalanobis;
mod mahalanobis_multi;
mod mahalanobis_pp;
mod maxlogit;
mod msp;
mod nci;
mod nnguide;
mod react;
mod rmds;
mod scale;
mod vim;

pub use ash::{ash_s, AshS};
pub use energy::{energy, Energy};
pub use fdbd::{Boundaries, Fdbd};
pub use gen::{generalised_entropy, Gen};
pub use gmm_layer::GmmLayer;
pub use knn::{Knn, KnnBank, K};
pub use lsgm::Lsgm;
pub use mahalanobis::{Mahalanobis, Precision, TiedGaussians};
pub use mahalanobis_multi::{MahalanobisMulti, StandardisedSum};
pub use mahalanobis_pp::MahalanobisPp;
pub use maxlogit::{max_logit, MaxLogit};
pub use msp::{max_sigmoid, msp, Msp};
pub use nci::{Collapse, Nci};
pub use nnguide::{bank_rows, GuideBank, NnGuide};
pub use react::{percentile, React};
pub use rmds::{Relative, Rmds};
pub use scale::{scaled, Scale};
pub use vim::{principal_dim, Vim, VirtualLogit};

/// Every detector `--methods` can name, in report order (`all` runs them all).
pub const REGISTRY: &[Entry] = &[
    Entry::of::<Lsgm>(),
    Entry::of::<Msp>(),
    Entry::of::<Energy>(),
    Entry::of::<Mahalanobis>(),
    Entry::of::<MahalanobisMulti>(),
    Entry::of::<Knn>(),
    Entry::of::<MaxLogit>(),
    Entry::of::<Gen>(),
    Entry::of::<React>(),
    Entry::of::<AshS>(),
    Entry::of::<Vim>(),
    Entry::of::<Fdbd>(),
    Entry::of::<NnGuide>(),
    Entry::of::<MahalanobisPp>(),
    Entry::of::<Rmds>(),
    Entry::of::<Scale>(),
    Entry::of::<Nci>(),
    Entry::per_tap(gmm_layer::NAME, |tap| Box::new(GmmLayer { tap })),
];
