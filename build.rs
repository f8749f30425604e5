//! Link options for the server binary on Linux (the library and tests keep the defaults).
//!
//! - Position-dependent executable. A PIE build of this binary carries ~280k relative relocations
//!   (6.5 MB of `.rela.dyn`) that the dynamic loader reads and applies to 4.5 MB of
//!   `.data.rel.ro` at every start: ~11 MB of RSS and 1-2 ms before `main`. A non-PIE link
//!   resolves them at link time. Set `BEDROCK_COST_MCP_PIE=1` to keep a PIE build.
//! - Start-up code first (release builds on x86_64, linked by rustc's default `rust-lld`): the
//!   ~1,500 functions that run from exec to the `tools/list` answer, listed in
//!   `tools/startup-order/symbols.txt`, are placed together at the start of `.text`. Scattered
//!   over the 110 MB text section they cost ~12 MB of RSS (every first touch maps a 64 KiB
//!   fault-around window); together, ~1.5 MB. The functions of the first CUR answers follow
//!   (~8 MB of code, mostly DataFusion, that otherwise map ~70 MB). A stale list only costs
//!   memory: unknown names are skipped without a warning. Regenerate it with
//!   `tools/startup-order/generate.py`; set `BEDROCK_COST_MCP_SYMBOL_ORDER=0` to link without it
//!   (e.g. with a linker other than lld).
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // A new list must relink the binary (a rerun of this script makes the package rebuild).
    println!("cargo:rerun-if-changed=tools/startup-order/symbols.txt");
    println!("cargo:rerun-if-env-changed=BEDROCK_COST_MCP_PIE");
    println!("cargo:rerun-if-env-changed=BEDROCK_COST_MCP_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    if env("BEDROCK_COST_MCP_PIE") != "1" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    let order =
        std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("tools/startup-order/symbols.txt");
    // rustc links x86_64-unknown-linux-gnu with its bundled rust-lld; a linker chosen in the
    // Cargo configuration or RUSTFLAGS may not know the option, so then only when it names lld.
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    let custom_linker = !env("RUSTC_LINKER").is_empty() || flags.contains("link");
    let lld = !custom_linker || env("RUSTC_LINKER").contains("lld") || flags.contains("lld");
    if env("TARGET") == "x86_64-unknown-linux-gnu"
        && env("PROFILE") == "release"
        && env("BEDROCK_COST_MCP_SYMBOL_ORDER") != "0"
        && lld
        && order.is_file()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
