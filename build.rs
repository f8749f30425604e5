//! Link the server binary as a position-dependent executable on Linux.
//!
//! A PIE build of this binary carries ~280k relative relocations (6.5 MB of `.rela.dyn`) that the
//! dynamic loader reads and applies to 4.5 MB of `.data.rel.ro` at every start: ~11 MB of RSS and
//! 1-2 ms before `main`. A non-PIE link resolves them at link time. Only the binaries are affected
//! (tests and the library keep the default); set `BEDROCK_COST_MCP_PIE=1` to keep a PIE build.
fn main() {
    println!("cargo:rerun-if-env-changed=BEDROCK_COST_MCP_PIE");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let want_pie = std::env::var("BEDROCK_COST_MCP_PIE").is_ok_and(|v| v == "1");
    if target_os == "linux" && !want_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
