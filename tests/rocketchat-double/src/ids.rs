//! Identifiers shaped like Meteor's `Random.id()` and Rocket.Chat login tokens.

use rand::Rng;

/// Meteor's unmistakable alphabet (no 0/1/I/O/l look-alikes).
const UNMISTAKABLE: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";
/// Base64url alphabet, as Meteor's `Random.secret()` uses for login tokens.
const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A 17-character document id, as Rocket.Chat gives users, rooms, messages and files.
pub fn random_id() -> String {
    pick(UNMISTAKABLE, 17)
}

/// A 43-character login (resume) token.
pub fn random_token() -> String {
    pick(SECRET, 43)
}

fn pick(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())])).collect()
}
