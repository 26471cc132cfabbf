//! The deployed binaries are the tested ones: `make package` and `sam build` build through
//! cargo-lambda, which adds its own release settings (`panic = "abort"`, thin LTO,
//! `codegen-units = 1`, stripped symbols) for each one the manifest leaves unset, and leaves an
//! explicit one alone. With `panic = "abort"` a handler panic kills the process instead of
//! becoming an error answer (and the worker's whole batch is retried), while the tests run a
//! plain `cargo build` binary. So the workspace sets each of them itself. (`make package` also
//! runs a panic through the Runtime API on a probe built by cargo-lambda; the benchmarks measure
//! binaries built by cargo-lambda.)

/// The `key = value` lines of the workspace manifest's `[profile.release]` table.
fn release_profile() -> Vec<(String, String)> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let text = std::fs::read_to_string(manifest).expect("the workspace manifest");
    text.lines()
        .skip_while(|line| line.trim() != "[profile.release]")
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let (key, value) = line.split_once('=')?;
            Some((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect()
}

#[test]
fn the_release_profile_leaves_cargo_lambda_nothing_to_fill_in() {
    let profile = release_profile();
    let value = |key: &str| {
        profile
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        value("panic"),
        Some("unwind"),
        "a handler panic must become an error answer, as it does in the tests"
    );
    for key in ["lto", "codegen-units", "strip", "opt-level"] {
        assert!(
            value(key).is_some(),
            "[profile.release] leaves {key} to cargo-lambda"
        );
    }
}
