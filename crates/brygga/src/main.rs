//! The `brygga` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Adapter crates register their factories here as they are added.
    brygga::main_with(Vec::new())
}
