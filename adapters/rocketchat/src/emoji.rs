//! Reactions: Rocket.Chat names emoji by `:shortcode:`, Matrix by the
//! Unicode emoji itself. The gemoji shortcode table of the `emojis` crate
//! covers both directions; a few Rocket.Chat (emojione) names differ.

/// Emojione names Rocket.Chat uses where gemoji has another name.
const ALIASES: &[(&str, &str)] =
    &[("thumbsup", "+1"), ("thumbsdown", "-1"), ("slight_smile", "slightly_smiling_face"), ("grinning", "grinning")];

/// The Unicode emoji of a Rocket.Chat reaction; unknown (custom) emoji keep their `:name:`.
pub(crate) fn to_unicode(shortcode: &str) -> String {
    let name = shortcode.trim_matches(':');
    let name = ALIASES.iter().find(|(rc, _)| *rc == name).map_or(name, |(_, gemoji)| gemoji);
    match emojis::get_by_shortcode(name) {
        Some(emoji) => emoji.as_str().to_owned(),
        None => shortcode.to_owned(),
    }
}

/// The Rocket.Chat `:shortcode:` of a Matrix reaction key, if it names an emoji.
pub(crate) fn to_shortcode(key: &str) -> Option<String> {
    // A key that is already a shortcode (a custom emoji bridged back) stays one.
    if key.len() > 2 && key.starts_with(':') && key.ends_with(':') && !key[1..key.len() - 1].contains([':', ' ']) {
        return Some(key.to_owned());
    }
    let emoji = emojis::get(key).or_else(|| emojis::get(key.trim_end_matches('\u{fe0f}')))?;
    let emoji = emoji.shortcode().map_or(emoji, |_| emoji);
    let name =
        emoji.shortcode().or_else(|| emoji.with_skin_tone(emojis::SkinTone::Default).and_then(|e| e.shortcode()))?;
    Some(format!(":{name}:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcodes_map_both_ways() {
        assert_eq!(to_unicode(":+1:"), "👍");
        assert_eq!(to_unicode(":thumbsup:"), "👍");
        assert_eq!(to_unicode(":tada:"), "🎉");
        assert_eq!(to_unicode(":heart:"), "❤️");
        assert_eq!(to_shortcode("🎉").as_deref(), Some(":tada:"));
        assert_eq!(to_shortcode("❤️").as_deref(), Some(":heart:"));
        assert_eq!(to_unicode(&to_shortcode("👍").unwrap()), "👍");
    }

    #[test]
    fn unknown_keys_are_kept_or_refused() {
        assert_eq!(to_unicode(":company_logo:"), ":company_logo:");
        assert_eq!(to_shortcode(":company_logo:").as_deref(), Some(":company_logo:"));
        assert_eq!(to_shortcode("yes!"), None);
        assert_eq!(to_shortcode(":a b:"), None);
    }
}
