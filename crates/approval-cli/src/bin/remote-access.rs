//! Remote Access (formerly Alero) vendor lifecycle: invite, onboard from identity-system hooks,
//! offboard, and look at invitations and vendors.

use std::process::ExitCode;

use approval_cli::remote_access_cmd::{Args, execute};
use approval_cli::run;
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    run(&args.common, async |p| execute(&args, p).await)
}
