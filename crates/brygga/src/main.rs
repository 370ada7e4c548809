//! The `brygga` binary, with every shipped adapter.

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    brygga::main_with(vec![
        Arc::new(brygga_xmpp::XmppFactory),
        Arc::new(brygga_rocketchat::RocketChatFactory),
        Arc::new(brygga_teams::TeamsFactory),
    ])
}
