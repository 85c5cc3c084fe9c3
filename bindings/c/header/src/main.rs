//! `include/lsgm.h` is what cbindgen makes of `bindings/c/src` now.
//!
//!     cargo run --release --manifest-path bindings/c/header/Cargo.toml            # check (CI)
//!     cargo run --release --manifest-path bindings/c/header/Cargo.toml -- --write # regenerate
//!
//! The check exits 1 with a message when the committed header is stale; the
//! write goes to a temporary file renamed over the header.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let write = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--write") => true,
        Some(other) => {
            eprintln!("unknown argument {other}: give nothing (check) or --write");
            return ExitCode::from(2);
        }
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bindings/c/cbindgen.toml: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bindings = match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cbindgen cannot read bindings/c/src: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = crate_dir.join("include/lsgm.h");
    if write {
        let tmp = path.with_extension("h.tmp");
        if let Err(e) = std::fs::write(&tmp, &generated).and_then(|()| std::fs::rename(&tmp, &path)) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", path.display());
        return ExitCode::SUCCESS;
    }
    if std::fs::read(&path).ok().as_deref() != Some(&generated[..]) {
        eprintln!(
            "bindings/c/include/lsgm.h is out of date with bindings/c/src: run \
             `cargo run --release --manifest-path bindings/c/header/Cargo.toml -- --write` and commit it"
        );
        return ExitCode::FAILURE;
    }
    eprintln!("bindings/c/include/lsgm.h is current");
    ExitCode::SUCCESS
}
