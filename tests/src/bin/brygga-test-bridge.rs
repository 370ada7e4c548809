//! The bridge binary with the loopback test adapter compiled in beside the
//! shipped ones; used by the end-to-end tests, never shipped.

use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    brygga::main_with(vec![
        Arc::new(brygga_e2e::loopback::LoopbackFactory),
        Arc::new(brygga_xmpp::XmppFactory),
        Arc::new(brygga_rocketchat::RocketChatFactory),
        Arc::new(brygga_teams::TeamsFactory),
    ])
}
