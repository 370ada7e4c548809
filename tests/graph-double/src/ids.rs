//! Identifier generation in Graph's formats.

/// A random GUID in the 8-4-4-4-12 form Entra uses for tenants, users, apps and teams.
pub fn guid() -> String {
    let v: u128 = rand::random();
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A random opaque secret (tokens, codes).
pub fn secret() -> String {
    format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>())
}

/// A Teams thread id as channels and chats use, `19:<hex>@thread.tacv2` / `@thread.v2`.
pub fn thread_id(suffix: &str) -> String {
    format!("19:{:032x}@{suffix}", rand::random::<u128>())
}

/// A device-code `user_code` like Entra's (9 upper-case letters and digits).
pub fn user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    (0..9).map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char).collect()
}
