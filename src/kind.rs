//! The choices a model is built from, each with one name.
//!
//! [`Chain`], [`Covariance`], [`Storage`] and [`Quantisation`] sit below
//! everything that uses them: the wire format stores them, the algorithm files
//! ([`crate::chain`], [`crate::density`], [`crate::quant`]) give them their
//! meaning, and every tool prints and parses them through the `Display` /
//! `FromStr` written here (and, with the `clap` feature, clap's `ValueEnum`),
//! so the tools' flags, `inspect` and the JSON reports need no change for a
//! new variant. All four are `#[non_exhaustive]`, so code outside this crate
//! must say what it does with a variant it does not know.
//!
//! What a new variant touches besides this file (the compiler finds the
//! first of each; the wire enums surface once those are fixed):
//! * a [`Storage`] precision: `bytes.rs` (its array type and dot product,
//!   unless an existing one serves), `density.rs` (`FactorData`, the
//!   Mahalanobis kernels), `model/wire.rs` (`Means`/`Factors`),
//!   `model/view.rs` (validation), `model/pack.rs` (packing), and
//!   `tests/storage.rs` for its rounding contract;
//! * a [`Quantisation`]: `quant.rs`, `model/wire.rs` (`Transition`),
//!   `model/view.rs`, `model/pack.rs`, `model/spec.rs` (`from_model`), and
//!   `tests/quantisation.rs` for its bound;
//! * either one changes the wire format: bump `FORMAT_VERSION` in
//!   `model/header.rs` and say in `model/wire.rs` what the version added
//!   (older files stay readable, as version 3 is).

use core::fmt;
use core::str::FromStr;

/// A name that did not parse as one of an enum's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// What was being parsed (`"layout"`, `"storage"`, …).
    pub what: &'static str,
    /// The accepted spellings.
    pub expected: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Name lists built by `named!` end in ", ".
        let expected = self.expected.trim_end_matches([',', ' ']);
        write!(f, "unknown {}; expected {}", self.what, expected)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ParseError {}

/// Declares a field-less enum whose variants each have one lower-case name
/// and a one-line help, and implements `Display`, `FromStr`, `ALL` and (with
/// the `clap` feature) `clap::ValueEnum` from that one table.
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[doc = $doc:literal])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The one name of this value (what `Display` writes and
            /// `FromStr` reads).
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            /// Parses a name, ignoring ASCII case.
            fn from_str(s: &str) -> Result<Self, ParseError> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name().eq_ignore_ascii_case(s))
                    .ok_or(ParseError {
                        what: $what,
                        expected: concat!($($text, ", "),+),
                    })
            }
        }

        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let help = match self {
                    $($name::$variant => concat!($($doc),*).trim_start(),)+
                };
                Some(clap::builder::PossibleValue::new(self.name()).help(help))
            }
        }
    };
}
#[cfg(feature = "onnx")]
pub(crate) use named;

named! {
    /// How mixture weights enter the chain (see [`crate::chain`]):
    /// `Paper` is `Π_i φ_i(z_i) N(x_i|z_i) · Π_i A_i(z_i, z_{i+1})`, `Markov`
    /// is `φ_1(z_1) N(x_1|z_1) Π_{i>1} A_{i−1}(z_{i−1}, z_i) N(x_i|z_i)`.
    pub enum Chain ("chain") {
        /// Mixture weights at every layer (the paper's Eq. 4).
        Paper = "paper",
        /// Mixture weights at the first layer only (an HMM).
        Markov = "markov",
    }
}

named! {
    /// Covariance structure of a layer's mixture (see [`crate::density`]).
    pub enum Covariance ("covariance") {
        /// Full covariance matrices (a packed upper-triangular precision Cholesky factor).
        Full = "full",
        /// Diagonal covariances (`1/σ` per dimension).
        Diag = "diag",
    }
}

named! {
    /// How a layer's means and precision factors are stored (see
    /// [`crate::density`]).
    ///
    /// | storage | means | factors | bytes per full component of dim `d` |
    /// |---|---|---|---|
    /// | `F32` | `f32` | `f32` | `4d + 2d(d+1)` |
    /// | `F16` | `f16` | `f16` | `2d + d(d+1)` |
    /// | `I8` | `f16` | `i8` codes + one `f16` scale per column | `4d + d(d+1)/2` |
    pub enum Storage ("storage") {
        /// f32 means and precision factors.
        F32 = "f32",
        /// f16 means and factors (half the size of f32; relative error ≤ 2⁻¹¹ per value).
        F16 = "f16",
        /// f16 means, i8 factors with one f16 scale per column (about a quarter of f32).
        I8 = "i8",
    }
}

// Written out because `named!` variants take no attributes besides docs.
#[allow(clippy::derivable_impls)]
impl Default for Storage {
    fn default() -> Self {
        Storage::F32
    }
}

named! {
    /// How a transition table is stored (see [`crate::quant`]).
    pub enum Quantisation ("transition quantisation") {
        /// Plain f32 transition tables.
        F32 = "f32",
        /// 16-bit codes (relative error ≤ 2⁻¹²).
        U16 = "u16",
        /// 8-bit codes with a log-spaced codebook.
        U8 = "u8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T: Copy + fmt::Display + FromStr<Err = ParseError> + PartialEq + fmt::Debug>(all: &[T]) {
        for &v in all {
            let name = v.to_string();
            assert_eq!(name.parse::<T>(), Ok(v));
            assert_eq!(name.to_uppercase().parse::<T>(), Ok(v));
        }
        let err = "nonsense".parse::<T>().unwrap_err();
        for v in all {
            assert!(err.expected.contains(&v.to_string()), "{err}");
        }
    }

    #[test]
    fn every_name_parses_back_and_errors_list_them_all() {
        round_trips(Chain::ALL);
        round_trips(Covariance::ALL);
        round_trips(Storage::ALL);
        round_trips(Quantisation::ALL);
        assert_eq!(Storage::I8.to_string(), "i8");
        assert_eq!(Quantisation::U16.to_string(), "u16");
        assert_eq!(Covariance::Diag.to_string(), "diag");
        assert_eq!(Chain::Markov.to_string(), "markov");
    }
}
