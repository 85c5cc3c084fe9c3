//! Puts memory.x where cortex-m-rt's link.x finds it, and rebuilds when the
//! embedded model or features change.
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    fs::copy("memory.x", out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-env-changed=MCU_DATA");
    if let Some(dir) = env::var_os("MCU_DATA") {
        let dir = PathBuf::from(dir);
        println!("cargo:rerun-if-changed={}", dir.join("model.lsgm").display());
        println!("cargo:rerun-if-changed={}", dir.join("features.bin").display());
    }
}
