//! The test venv of the independent clients (`$PAMTEST_VENV`, made by
//! scripts/install-test-deps.sh), shared by the client conformance tests.

use std::path::PathBuf;

/// `$PAMTEST_VENV/bin/<program>`. Without it, `None` after saying that `what` is skipped; a
/// failure instead when `PAMTEST_REQUIRE_SERVERS=1` (scripts/test.sh).
#[allow(
    clippy::print_stderr,
    reason = "a skipped test says so on the test output"
)]
pub fn program(program: &str, what: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PAMTEST_VENV")
        .map(|v| PathBuf::from(v).join("bin").join(program))
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            !required(),
            "PAMTEST_VENV/bin/{program} is missing: run scripts/install-test-deps.sh"
        );
        eprintln!("SKIPPED {what}: set PAMTEST_VENV to the test venv");
    }
    found
}

/// Whether the test servers and clients must be there (`PAMTEST_REQUIRE_SERVERS=1`).
pub fn required() -> bool {
    std::env::var("PAMTEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}
