//! A faithful in-process Microsoft Graph double for tests (never shipped).
