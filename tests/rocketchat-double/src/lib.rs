//! A faithful in-process Rocket.Chat double for tests (never shipped).
